package adapters

import (
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/google/uuid"
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
