package transport

import (
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

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

// Marshaler encodes commands and events as JSON, named by their type.
var Marshaler = cqrs.JSONMarshaler{
	GenerateName: cqrs.StructName,
	NewUUID:      func() string { return uuid.Must(uuid.NewV7()).String() },
}

// EventTopic is the topic an event is published on.
func EventTopic(eventName string) string { return EventTopicPrefix + eventName }

// CommandTopic is the topic a command is sent on.
func CommandTopic(commandName string) string { return CommandTopicPrefix + commandName }

// SchemaVersionKey is the metadata key of an event message's schema version.
const SchemaVersionKey = "schema_version"

// eventSchemaVersions are the versions of the events' JSON forms that this
// build reads and writes.
var eventSchemaVersions = map[string]int{
	domain.UserRegistered{}.EventName(): domain.UserRegisteredSchemaVersion,
}

// SetSchemaVersion records the version of the event's JSON form in msg.
func SetSchemaVersion(eventName string, msg *message.Message) {
	if version, ok := eventSchemaVersions[eventName]; ok {
		msg.Metadata.Set(SchemaVersionKey, strconv.Itoa(version))
	}
}

// CheckSchemaVersion rejects an event message of a version this build does
// not know; a message without a version is taken as the current one.
func CheckSchemaVersion(eventName string, msg *message.Message) error {
	got := msg.Metadata.Get(SchemaVersionKey)
	if got == "" {
		return nil
	}
	want, known := eventSchemaVersions[eventName]
	if !known || got != strconv.Itoa(want) {
		return fmt.Errorf("%s: unknown schema version %q (this build reads version %d)", eventName, got, want)
	}
	return nil
}
