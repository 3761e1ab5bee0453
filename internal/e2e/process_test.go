package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGoroutinesIn_KeepsThoseWithAFrameOfAPrefix(t *testing.T) {
	dump := `SIGQUIT: quit
PC=0x49a4a1 m=0 sigcode=0

goroutine 1 gp=0x1 m=nil [semacquire]:
sync.(*WaitGroup).Wait(0x1)
github.com/ThreeDotsLabs/watermill/message.(*Router).Close(0x2)

goroutine 7 gp=0x2 m=nil [select]:
google.golang.org/grpc/internal/transport.(*loopyWriter).run(0x3)

goroutine 9 gp=0x3 m=nil [chan receive]:
github.com/onboard/onboard/service.(*Service).Run(0x4)
`
	got := GoroutinesIn(dump, "github.com/onboard/onboard/", "github.com/ThreeDotsLabs/")
	assert.Contains(t, got, "goroutine 1 gp=0x1")
	assert.Contains(t, got, "(*Router).Close")
	assert.Contains(t, got, "goroutine 9 gp=0x3")
	assert.NotContains(t, got, "loopyWriter")
	assert.NotContains(t, got, "SIGQUIT")
	assert.Empty(t, GoroutinesIn(dump, "example.com/none/"))
}
