package sns_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/destinationtest"
	"github.com/heraldhq/herald/destination/internal/awsdest"
	"github.com/heraldhq/herald/destination/sns"
	"github.com/heraldhq/herald/internal/awsemu"
	"github.com/heraldhq/herald/signing"
)

func endpoint(e *awsemu.Emulator, addr, topic, secret string) destination.Endpoint {
	cfg, _ := destination.Encode(sns.Config{TopicARN: awsemu.TopicARN(topic), Credentials: awsdest.Credentials{
		Region: awsemu.Region, AccessKeyID: e.AccessKeyID, SecretAccessKey: secret, EndpointURL: "http://" + addr}})
	return destination.Endpoint{ID: "ep_sns", Type: sns.Type, Config: cfg, Timeout: 10 * time.Second}
}

// topic creates a topic and a queue subscribed to it with raw message
// delivery (the message as published, its attributes as the queue
// message's), and returns the queue's URL.
func topic(t *testing.T, e *awsemu.Emulator, name string) string {
	t.Helper()
	ctx := context.Background()
	in := &awssns.CreateTopicInput{Name: aws.String(name)}
	qin := &awssqs.CreateQueueInput{QueueName: aws.String("from-" + name)}
	if strings.HasSuffix(name, ".fifo") {
		in.Attributes = map[string]string{"FifoTopic": "true"}
		qin.Attributes = map[string]string{"FifoQueue": "true"}
	}
	tp, err := e.SNS().CreateTopic(ctx, in)
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	q, err := e.SQS().CreateQueue(ctx, qin)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := e.SQS().GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SNS().Subscribe(ctx, &awssns.SubscribeInput{TopicArn: tp.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes["QueueArn"]), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl)
}

// receive returns the next message the subscribed queue got, with its
// attributes as headers, and deletes it.
func receive(ctx context.Context, e *awsemu.Emulator, queueURL string) (destinationtest.Received, error) {
	client := e.SQS()
	for {
		out, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			return destinationtest.Received{}, err
		}
		for _, m := range out.Messages {
			if _, err := client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return destinationtest.Received{}, err
			}
			h := map[string]string{}
			for k, v := range m.MessageAttributes {
				h[strings.ToLower(k)] = aws.ToString(v.StringValue)
			}
			return destinationtest.Received{Body: []byte(aws.ToString(m.Body)), Headers: h}, nil
		}
	}
}

// TestConformance runs the suite against kumo, an in-process emulator of
// the SNS API (not SNS itself), behind a front that checks signatures;
// messages are consumed from a queue subscribed to the topic.
func TestConformance(t *testing.T) {
	e := awsemu.Start(t)
	queue := topic(t, e, "webhooks")
	topic(t, e, "busy")
	e.Throttle("busy")
	throttled := endpoint(e, e.Addr, "busy", e.SecretAccessKey)
	destinationtest.Run(t, destinationtest.Harness{
		Spec:          sns.Spec(),
		Addr:          e.Addr,
		Endpoint:      func(addr string) destination.Endpoint { return endpoint(e, addr, "webhooks", e.SecretAccessKey) },
		Receive:       func(ctx context.Context) (destinationtest.Received, error) { return receive(ctx, e, queue) },
		Permanent:     endpoint(e, e.Addr, "no-such-topic", e.SecretAccessKey),
		PermanentSays: "does not exist",
		Throttled:     &throttled,
		Conns:         e.Conns,
	})
}

func open(t *testing.T) destination.Driver {
	t.Helper()
	drivers := destination.NewRegistry(sns.Spec()).Open(destination.Env{Policy: destination.Policy{AllowHTTP: true, AllowPrivate: true}})
	t.Cleanup(func() { _ = drivers.Close() })
	d, err := drivers.Driver(sns.Type)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func send(t *testing.T, tg destination.Target, m *destination.Message) *destination.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tg.Send(ctx, m)
}

func message(id, key string) *destination.Message {
	return &destination.Message{ID: id, EventType: "order.created", DeliveryID: "dlv_" + id, Attempt: 1, OrderingKey: key,
		Body: []byte(`{"id":"` + id + `","type":"order.created","data":{}}`), Signer: signing.NewSigner([]byte("0123456789abcdef0123456789abcdef"))}
}

// TestFIFO_GroupsByOrderingKeyAndDeduplicatesByEventID publishes to a FIFO
// topic: the ordering key is the message group (the endpoint's ID without
// one), and a delivery published twice reaches the subscribed FIFO queue
// once.
func TestFIFO_GroupsByOrderingKeyAndDeduplicatesByEventID(t *testing.T) {
	e := awsemu.Start(t)
	queue := topic(t, e, "orders.fifo")
	ep := endpoint(e, e.Addr, "orders.fifo", e.SecretAccessKey)
	tg, err := open(t).Prepare(&ep)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		key := "customer-" + strconv.Itoa(i%2)
		if i == 4 {
			key = ""
		}
		if r := send(t, tg, message("evt_snsfifo_"+strconv.Itoa(i), key)); r.Outcome != destination.Delivered {
			t.Fatalf("publish %d: %s (%s)", i, r.Outcome, r.Error)
		}
	}
	again := message("evt_snsfifo_0", "customer-0")
	again.Attempt = 2
	if r := send(t, tg, again); r.Outcome != destination.Delivered {
		t.Fatalf("publish again: %s (%s)", r.Outcome, r.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string][]string{}
	for range 5 {
		m, err := receive(ctx, e, queue)
		if err != nil {
			t.Fatal(err)
		}
		id := m.Headers["webhook-id"]
		got[e.Group(id)] = append(got[e.Group(id)], id)
	}
	want := map[string]string{"customer-0": "evt_snsfifo_0,evt_snsfifo_2", "customer-1": "evt_snsfifo_1,evt_snsfifo_3", "ep_sns": "evt_snsfifo_4"}
	for k, ids := range want {
		if strings.Join(got[k], ",") != ids {
			t.Errorf("group %q got %v, want %s in that order", k, got[k], ids)
		}
	}
	short, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if m, err := receive(short, e, queue); err == nil {
		t.Errorf("the queue got one more message, %s attempt %s: the second publish was not deduplicated", m.Headers["webhook-id"], m.Headers["x-herald-attempt"])
	}
}

// TestWrongCredentials_FailPermanentlySayingSo: a wrong secret is a
// permanent failure that says access was denied.
func TestWrongCredentials_FailPermanentlySayingSo(t *testing.T) {
	e := awsemu.Start(t)
	topic(t, e, "webhooks")
	ep := endpoint(e, e.Addr, "webhooks", "not-the-secret-access-key")
	tg, err := open(t).Prepare(&ep)
	if err != nil {
		t.Fatal(err)
	}
	r := send(t, tg, message("evt_creds", ""))
	if r.Outcome != destination.Permanent || !strings.Contains(r.Error, "access denied") || !strings.Contains(r.Error, "SignatureDoesNotMatch") {
		t.Fatalf("outcome = %s (%q), want permanent: access denied (SignatureDoesNotMatch)", r.Outcome, r.Error)
	}
}
