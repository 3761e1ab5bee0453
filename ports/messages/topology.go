package messages

import (
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
)

// RegisterUserHandlerName is the command handler's name and consumer group.
const RegisterUserHandlerName = "RegisterUserHandler"

// Topology is what the service declares on its transport, without the
// namespace: every event's topic and the command's, and the subscription
// of each handler it gives the router. The operator's `transport
// teardown` reads it for the RabbitMQ queues, which AMQP cannot list, and
// the end-to-end tests for the names they inspect; the service's tests
// check that it runs these handlers.
func Topology() transport.Topology {
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
			{Handler: RegisterUserHandlerName, Topic: registerUser},
		},
	}
}
