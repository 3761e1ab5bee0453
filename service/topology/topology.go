// Package topology names what the service declares on its transport: the
// topics it publishes to and the subscription of each handler. The
// operator's `transport teardown` reads it for the RabbitMQ queues, which
// AMQP cannot list, and the end-to-end tests for the names they inspect;
// the service's tests check that it runs these handlers.
package topology

import (
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
)

// RegisterUserHandler is the command handler's name and consumer group.
const RegisterUserHandler = "RegisterUserHandler"

// Transport is the service's topology, without the namespace: every
// event's topic and the command's, and a subscription per handler.
func Transport() transport.Topology {
	marshaler := transport.NewMarshaler(domain.Events)
	eventTopic := func(e domain.Event) string { return transport.EventTopic(marshaler.Name(e)) }
	registerUser := transport.CommandTopic(marshaler.Name(&command.RegisterUser{}))
	topics := []string{registerUser}
	for _, name := range domain.Events.Names() {
		topics = append(topics, transport.EventTopic(name))
	}
	return transport.Topology{
		Topics: topics,
		Handlers: []transport.HandlerTopic{
			{Handler: event.SendWelcomeEmailName, Topic: eventTopic(&domain.UserRegistered{})},
			{Handler: event.SeedSignupPointsName, Topic: eventTopic(&domain.UserRegistered{})},
			{Handler: event.SendVerificationEmailName, Topic: eventTopic(&domain.VerificationEmailRequested{})},
			{Handler: event.SendNewAddressEmailName, Topic: eventTopic(&domain.EmailChanged{})},
			{Handler: event.SendEmailChangedNoticeName, Topic: eventTopic(&domain.EmailChanged{})},
			{Handler: event.SendPasswordResetEmailName, Topic: eventTopic(&domain.PasswordResetRequested{})},
			{Handler: RegisterUserHandler, Topic: registerUser},
		},
	}
}
