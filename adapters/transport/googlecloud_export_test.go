//go:build !nogooglecloud

package transport

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// BoundedClose is sub whose Close waits at most limit, as googlecloud's
// handler subscribers are.
func BoundedClose(sub initializingSubscriber, limit time.Duration) message.Subscriber {
	return boundedCloseSubscriber{sub, limit}
}

// GoogleCloudPublishSettings are the googlecloud transport's publish
// settings, with limit in place of its own.
var GoogleCloudPublishSettings = googleCloudPublishSettings
