package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/heraldhq/herald/internal/awsemu"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// sqsMessages receives and deletes messages from a queue until it has n.
func sqsMessages(t *testing.T, e *awsemu.Emulator, queueURL string, n int) []message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []message
	for len(out) < n {
		res, err := e.SQS().ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatalf("receive (%d of %d so far): %v", len(out), n, err)
		}
		for _, m := range res.Messages {
			h := http.Header{}
			for k, v := range m.MessageAttributes {
				h.Set(k, aws.ToString(v.StringValue))
			}
			out = append(out, message{body: []byte(aws.ToString(m.Body)), headers: h})
			if _, err := e.SQS().DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// publishKeyed publishes per events for each of keys keys, interleaved,
// and returns their IDs.
func publishKeyed(t *testing.T, s *heraldtest.Server, keys, per int) []string {
	var ids []string
	for i := range per {
		for k := range keys {
			var out struct{ PublishEvent struct{ ID string } }
			s.Do(s.Token, `mutation($in: PublishEventInput!) { publishEvent(input: $in) { id } }`, map[string]any{"in": map[string]any{
				"eventType": "order.created", "orderingKey": fmt.Sprintf("customer-%d", k), "payload": map[string]any{"key": k, "seq": i},
			}}).Decode(t, &out)
			ids = append(ids, out.PublishEvent.ID)
		}
	}
	return ids
}

// checkOrder verifies every message's signature and that each key's
// events arrived in order, each once.
func checkOrder(t *testing.T, secret string, msgs []message, ids []string) {
	t.Helper()
	seen := map[string]int{}
	last := map[int]int{}
	for _, m := range msgs {
		seen[verify(t, secret, m)]++
		var env struct{ Data struct{ Key, Seq int } }
		_ = json.Unmarshal(m.body, &env)
		if prev, ok := last[env.Data.Key]; ok && env.Data.Seq != prev+1 {
			t.Errorf("key %d: seq %d arrived after %d", env.Data.Key, env.Data.Seq, prev)
		}
		last[env.Data.Key] = env.Data.Seq
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("event %s arrived %d times, want once", id, seen[id])
		}
	}
}

// TestSQS_FIFOQueueGetsEveryEventSignedInOrderPerKey publishes through the
// API to an SQS FIFO endpoint ordered by key (against the kumo emulator):
// a consumer gets every event once, verifies it with the endpoint's secret
// from the message attributes, and sees each key's events in order.
func TestSQS_FIFOQueueGetsEveryEventSignedInOrderPerKey(t *testing.T) {
	e := awsemu.Start(t)
	q, err := e.SQS().CreateQueue(context.Background(), &awssqs.CreateQueueInput{QueueName: aws.String(awsemu.Name("orders.fifo")),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameFifoQueue): "true"}})
	if err != nil {
		t.Fatal(err)
	}
	s := heraldtest.Start(t)
	_, secret := s.CreateEndpoint(s.Token, map[string]any{"type": "SQS", "ordering": "KEY", "sqs": map[string]any{
		"queueUrl": aws.ToString(q.QueueUrl), "region": awsemu.Region, "accessKeyId": e.AccessKeyID, "secretAccessKey": e.SecretAccessKey, "endpointUrl": e.URL}})
	ids := publishKeyed(t, s, 3, 8)
	waitAll(t, s, ids, 60*time.Second)
	checkOrder(t, secret, sqsMessages(t, e, aws.ToString(q.QueueUrl), len(ids)), ids)
}

// TestSNS_TopicGetsEveryEventSigned publishes through the API to an SNS
// endpoint (against the kumo emulator); a queue subscribed to the topic
// with raw delivery gets every event with Herald's headers as attributes.
func TestSNS_TopicGetsEveryEventSigned(t *testing.T) {
	e := awsemu.Start(t)
	ctx := context.Background()
	tp, err := e.SNS().CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String(awsemu.Name("orders"))})
	if err != nil {
		t.Fatal(err)
	}
	q, err := e.SQS().CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(awsemu.Name("orders-subscriber"))})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := e.SQS().GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SNS().Subscribe(ctx, &awssns.SubscribeInput{TopicArn: tp.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes["QueueArn"]), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	s := heraldtest.Start(t)
	_, secret := s.CreateEndpoint(s.Token, map[string]any{"type": "SNS", "ordering": "KEY", "sns": map[string]any{
		"topicArn": aws.ToString(tp.TopicArn), "region": awsemu.Region, "accessKeyId": e.AccessKeyID, "secretAccessKey": e.SecretAccessKey, "endpointUrl": e.URL}})
	ids := publishKeyed(t, s, 2, 5)
	waitAll(t, s, ids, 60*time.Second)
	checkOrder(t, secret, sqsMessages(t, e, aws.ToString(q.QueueUrl), len(ids)), ids)
}
