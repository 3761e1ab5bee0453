package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// endpoint is the emulator the tests of this package share: goaws keeps
// its queues in globals, so there is one per process.
var endpoint string

func TestMain(m *testing.M) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	host, port, _ := net.SplitHostPort(listener.Addr().String())
	server := httptest.NewUnstartedServer(newHandler(host, port, "us-east-1"))
	server.Listener = listener
	server.Start()
	endpoint = server.URL
	code := m.Run()
	server.Close()
	os.Exit(code)
}

func awsConfig() aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

func TestFront_TheSDKsSQSClientWorksThroughIt(t *testing.T) {
	ctx := t.Context()
	client := sqs.NewFromConfig(awsConfig())

	_, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("front-missing")})
	var missing *types.QueueDoesNotExist
	require.ErrorAs(t, err, &missing, "an unknown queue is SQS's typed error")

	dead, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("front-dead")})
	require.NoError(t, err)
	assert.Equal(t, endpoint+"/"+Account+"/front-dead", *dead.QueueUrl)
	deadArn, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dead.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:sqs:us-east-1:"+Account+":front-dead", deadArn.Attributes["QueueArn"])

	queue, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String("front-work"),
		Attributes: map[string]string{
			"VisibilityTimeout": "1",
			"RedrivePolicy":     `{"maxReceiveCount":"1","deadLetterTargetArn":"` + deadArn.Attributes["QueueArn"] + `"}`,
		},
	})
	require.NoError(t, err)

	// The SDK checks the MD5 of the body and of the attributes it sent.
	sent, err := client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    queue.QueueUrl,
		MessageBody: aws.String(`{"ü":"body"}`),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"uuid": {DataType: aws.String("String"), StringValue: aws.String("u-1")},
		},
	})
	require.NoError(t, err)
	require.NotEmpty(t, *sent.MessageId)

	received := receiveOne(t, client, *queue.QueueUrl)
	counts, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: queue.QueueUrl, AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"},
		counts.Attributes, "a message in flight is counted as SQS does")
	assert.Equal(t, *sent.MessageId, *received.MessageId)
	assert.Equal(t, `{"ü":"body"}`, *received.Body)
	assert.Equal(t, "u-1", *received.MessageAttributes["uuid"].StringValue)

	// Released at once, it comes back; left to time out then, it is in
	// the dead-letter queue (goaws moves it after maxReceiveCount+1
	// receives, SQS after maxReceiveCount).
	_, err = client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: queue.QueueUrl, ReceiptHandle: received.ReceiptHandle, VisibilityTimeout: 0,
	})
	require.NoError(t, err)
	receiveOne(t, client, *queue.QueueUrl)
	moved := receiveOne(t, client, *dead.QueueUrl)
	assert.Equal(t, *sent.MessageId, *moved.MessageId)

	_, err = client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: dead.QueueUrl, ReceiptHandle: moved.ReceiptHandle})
	require.NoError(t, err)
	_, err = client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: dead.QueueUrl, ReceiptHandle: moved.ReceiptHandle})
	require.Error(t, err, "a receipt handle deleted once is gone")

	depth, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: queue.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	require.NoError(t, err)
	assert.Equal(t, "0", depth.Attributes["ApproximateNumberOfMessages"])

	listed, err := client.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("front-")})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{*dead.QueueUrl, *queue.QueueUrl}, listed.QueueUrls)

	_, err = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: queue.QueueUrl})
	require.NoError(t, err)
	_, err = client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("front-work")})
	require.ErrorAs(t, err, &missing)
}

// receiveOne waits up to 5 s for one message of queue.
func receiveOne(t *testing.T, client *sqs.Client, queue string) types.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queue), WaitTimeSeconds: 1, MaxNumberOfMessages: 1,
			MessageAttributeNames: []string{"All"},
		})
		require.NoError(t, err)
		if len(out.Messages) == 1 {
			return out.Messages[0]
		}
	}
	t.Fatalf("no message on %s within 5 s", queue)
	return types.Message{}
}

func TestFront_SNSFansOutToAQueueAsItCame(t *testing.T) {
	ctx := t.Context()
	sqsClient, snsClient := sqs.NewFromConfig(awsConfig()), sns.NewFromConfig(awsConfig())
	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("front-topic")})
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:sns:us-east-1:"+Account+":front-topic", *topic.TopicArn)
	queue, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("front-subscriber")})
	require.NoError(t, err)
	_, err = snsClient.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String("arn:aws:sqs:us-east-1:" + Account + ":front-subscriber"),
		Attributes: map[string]string{"RawMessageDelivery": "true"},
	})
	require.NoError(t, err)

	_, err = snsClient.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("event")})
	require.NoError(t, err)
	assert.Equal(t, "event", *receiveOne(t, sqsClient, *queue.QueueUrl).Body)
}

func TestFront_BadRequestsGetSQSErrors(t *testing.T) {
	for name, body := range map[string]string{
		"malformed JSON":    `{"QueueName":`,
		"a list for a name": `{"QueueName":["a"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, endpoint, bytes.NewBufferString(body))
			require.NoError(t, err)
			req.Header.Set("X-Amz-Target", "AmazonSQS.CreateQueue")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			var answer map[string]string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, "com.amazonaws.sqs#InvalidParameterValue", answer["__type"])
		})
	}
}
