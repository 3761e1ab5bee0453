package transport

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/domain"
)

// Topics. They name tables, exchanges and queues: never rename one casually.
const (
	// OutboxTopic is the outbox table's topic, read by the forwarder.
	OutboxTopic = "outbox"
	// PoisonTopic receives messages that failed all their retries.
	PoisonTopic = "poison"
	// PoisonGroup is the consumer group (the queue, on AMQP) that keeps
	// poisoned messages for operators.
	PoisonGroup = "poison"
	// CommandTopicPrefix prefixes each command's topic: commands.RegisterUser.
	CommandTopicPrefix = "commands."
	// EventTopicPrefix prefixes each event's topic: events.UserRegistered.
	EventTopicPrefix = "events."
)

// NewMarshaler encodes commands and events as JSON, each named as
// registered in events (an event) or by its type (a command), and reads an
// event published at an older schema version through the registry's
// upcasters.
func NewMarshaler(events domain.Registry) cqrs.CommandEventMarshaler {
	return upcastingMarshaler{
		JSONMarshaler: cqrs.JSONMarshaler{
			GenerateName: messageName,
			NewUUID:      func() string { return uuid.Must(uuid.NewV7()).String() },
		},
		events: events,
	}
}

type upcastingMarshaler struct {
	cqrs.JSONMarshaler
	events domain.Registry
}

// Unmarshal decodes msg into v, upcasting an event of an older version
// this build reads; CheckSchemaVersion refuses the versions it does not.
func (m upcastingMarshaler) Unmarshal(msg *message.Message, v any) error {
	version, err := strconv.Atoi(msg.Metadata.Get(SchemaVersionKey))
	name := m.NameFromMessage(msg)
	current, unknown := m.events.Version(name)
	if err != nil || unknown != nil || version >= current || !m.events.CanRead(name, version) {
		return m.JSONMarshaler.Unmarshal(msg, v)
	}
	payload, err := m.events.Upcast(name, version, msg.Payload)
	if err != nil {
		return err
	}
	upcast := msg.Copy()
	upcast.Payload = payload
	return m.JSONMarshaler.Unmarshal(upcast, v)
}

// messageName is an event's registered name (domain.Event's EventName), or
// a command's type name.
func messageName(v any) string {
	if e, ok := v.(domain.Event); ok {
		return e.EventName()
	}
	return cqrs.StructName(v)
}

// EventTopic is the topic an event is published on.
func EventTopic(eventName string) string { return EventTopicPrefix + eventName }

// CommandTopic is the topic a command is sent on.
func CommandTopic(commandName string) string { return CommandTopicPrefix + commandName }

// ClientRequestIDKey carries, beside the correlation id, the id a client
// gave the request that produced a message.
const ClientRequestIDKey = "client_request_id"

// SchemaVersionKey is the metadata key of an event message's schema version.
const SchemaVersionKey = "schema_version"

// SetSchemaVersion records the version of the event's JSON form, as the
// registry names it, in msg.
func SetSchemaVersion(events domain.Registry, eventName string, msg *message.Message) error {
	version, err := events.Version(eventName)
	if err != nil {
		return err
	}
	msg.Metadata.Set(SchemaVersionKey, strconv.Itoa(version))
	return nil
}

// CheckSchemaVersion rejects an event message of a version this build does
// not read (Marshaler upcasts the older ones it does); a message without a
// version is taken as the current one.
func CheckSchemaVersion(events domain.Registry, eventName string, msg *message.Message) error {
	got := msg.Metadata.Get(SchemaVersionKey)
	if got == "" {
		return nil
	}
	want, err := events.Version(eventName)
	if err != nil {
		return err
	}
	if version, err := strconv.Atoi(got); err != nil || !events.CanRead(eventName, version) {
		return fmt.Errorf("%s: unknown schema version %q (this build reads versions up to %d)", eventName, got, want)
	}
	return nil
}

// NameKey is the metadata key of a message's event or command name, where
// cqrs.JSONMarshaler reads it.
const NameKey = "name"

// NewEventMessage is the message of an event already encoded: payload, in
// the JSON form of schemaVersion, under id, with the correlation and client
// request ids of ctx, and ctx as its context (the publish's span).
func NewEventMessage(ctx context.Context, id, name string, schemaVersion int, payload []byte) *message.Message {
	msg := message.NewMessage(id, payload)
	msg.Metadata.Set(NameKey, name)
	msg.Metadata.Set(SchemaVersionKey, strconv.Itoa(schemaVersion))
	if id := app.CorrelationID(ctx); id != "" {
		middleware.SetCorrelationID(id, msg)
	}
	if id := app.ClientRequestID(ctx); id != "" {
		msg.Metadata.Set(ClientRequestIDKey, id)
	}
	msg.SetContext(ctx)
	return msg
}
