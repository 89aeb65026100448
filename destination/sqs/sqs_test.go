package sqs_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/destinationtest"
	"github.com/heraldhq/herald/destination/internal/awsdest"
	"github.com/heraldhq/herald/destination/sqs"
	"github.com/heraldhq/herald/internal/awsemu"
	"github.com/heraldhq/herald/signing"
)

func endpoint(e *awsemu.Emulator, addr, queue, secret string) destination.Endpoint {
	cfg, _ := destination.Encode(sqs.Config{QueueURL: awsemu.QueueURL(addr, queue), Credentials: awsdest.Credentials{
		Region: awsemu.Region, AccessKeyID: e.AccessKeyID, SecretAccessKey: secret, EndpointURL: "http://" + addr}})
	return destination.Endpoint{ID: "ep_sqs", Type: sqs.Type, Config: cfg, Timeout: 10 * time.Second}
}

func createQueue(t *testing.T, e *awsemu.Emulator, name string) string {
	t.Helper()
	in := &awssqs.CreateQueueInput{QueueName: aws.String(name)}
	if strings.HasSuffix(name, ".fifo") {
		in.Attributes = map[string]string{"FifoQueue": "true"}
	}
	out, err := e.SQS().CreateQueue(context.Background(), in)
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// receive returns the queue's next message, with its attributes as
// headers, and deletes it.
func receive(ctx context.Context, e *awsemu.Emulator, queueURL string) (destinationtest.Received, error) {
	client := e.SQS()
	for {
		out, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
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
// the SQS API (not SQS itself), behind a front that checks signatures.
func TestConformance(t *testing.T) {
	e := awsemu.Start(t)
	queue := createQueue(t, e, "webhooks")
	createQueue(t, e, "busy")
	e.Throttle("busy")
	throttled := endpoint(e, e.Addr, "busy", e.SecretAccessKey)
	destinationtest.Run(t, destinationtest.Harness{
		Spec:          sqs.Spec(),
		Addr:          e.Addr,
		Endpoint:      func(addr string) destination.Endpoint { return endpoint(e, addr, "webhooks", e.SecretAccessKey) },
		Receive:       func(ctx context.Context) (destinationtest.Received, error) { return receive(ctx, e, queue) },
		Permanent:     endpoint(e, e.Addr, "no-such-queue", e.SecretAccessKey),
		PermanentSays: "does not exist",
		Throttled:     &throttled,
		Conns:         e.Conns,
	})
}

func send(t *testing.T, tg destination.Target, m *destination.Message) *destination.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tg.Send(ctx, m)
}

func open(t *testing.T) destination.Driver {
	t.Helper()
	drivers := destination.NewRegistry(sqs.Spec()).Open(destination.Env{Policy: destination.Policy{AllowHTTP: true, AllowPrivate: true}})
	t.Cleanup(func() { _ = drivers.Close() })
	d, err := drivers.Driver(sqs.Type)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func message(id, key string) *destination.Message {
	return &destination.Message{ID: id, EventType: "order.created", DeliveryID: "dlv_" + id, Attempt: 1, OrderingKey: key,
		Body: []byte(`{"id":"` + id + `","type":"order.created","data":{}}`), Signer: signing.NewSigner([]byte("0123456789abcdef0123456789abcdef"))}
}

// TestFIFO_GroupsByOrderingKeyAndDeduplicatesByEventID sends to a FIFO
// queue: the ordering key is the message group (the endpoint's ID without
// one), one key's messages arrive in order, and a delivery sent twice (a
// retry after a lost answer) is stored once.
func TestFIFO_GroupsByOrderingKeyAndDeduplicatesByEventID(t *testing.T) {
	e := awsemu.Start(t)
	queue := createQueue(t, e, "orders.fifo")
	tg, err := open(t).Prepare(ptr(endpoint(e, e.Addr, "orders.fifo", e.SecretAccessKey)))
	if err != nil {
		t.Fatal(err)
	}
	var sent []*destination.Message
	for i := range 6 {
		key := "customer-" + strconv.Itoa(i%2)
		if i == 5 {
			key = ""
		}
		m := message("evt_fifo_"+strconv.Itoa(i), key)
		sent = append(sent, m)
		if r := send(t, tg, m); r.Outcome != destination.Delivered {
			t.Fatalf("send %d: %s (%s)", i, r.Outcome, r.Error)
		}
	}
	// The same event again, as a retry would send it: a later attempt of
	// the same delivery.
	again := message("evt_fifo_0", "customer-0")
	again.Attempt = 2
	if r := send(t, tg, again); r.Outcome != destination.Delivered {
		t.Fatalf("send again: %s (%s)", r.Outcome, r.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string][]string{}
	for range sent {
		m, err := receive(ctx, e, queue)
		if err != nil {
			t.Fatal(err)
		}
		id := m.Headers["webhook-id"]
		got[e.Group(id)] = append(got[e.Group(id)], id)
	}
	want := map[string][]string{
		"customer-0": {"evt_fifo_0", "evt_fifo_2", "evt_fifo_4"},
		"customer-1": {"evt_fifo_1", "evt_fifo_3"},
		"ep_sqs":     {"evt_fifo_5"},
	}
	for k, ids := range want {
		if strings.Join(got[k], ",") != strings.Join(ids, ",") {
			t.Errorf("group %q got %v, want %v in that order", k, got[k], ids)
		}
	}
	short, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if m, err := receive(short, e, queue); err == nil {
		t.Errorf("the queue holds one more message, %s attempt %s: the retry was not deduplicated", m.Headers["webhook-id"], m.Headers["x-herald-attempt"])
	}
}

// TestWrongCredentials_FailPermanentlySayingSo: an unknown access key and
// a wrong secret are permanent failures that say access was denied.
func TestWrongCredentials_FailPermanentlySayingSo(t *testing.T) {
	e := awsemu.Start(t)
	createQueue(t, e, "webhooks")
	d := open(t)
	unknownKey := endpoint(e, e.Addr, "webhooks", e.SecretAccessKey)
	unknownKey.Config, _ = destination.Encode(sqs.Config{QueueURL: awsemu.QueueURL(e.Addr, "webhooks"), Credentials: awsdest.Credentials{
		Region: awsemu.Region, AccessKeyID: "AKIAUNKNOWN000000000", SecretAccessKey: e.SecretAccessKey, EndpointURL: e.URL}})
	for name, ep := range map[string]destination.Endpoint{
		"wrong secret": endpoint(e, e.Addr, "webhooks", "not-the-secret-access-key"),
		"unknown key":  unknownKey,
	} {
		t.Run(name, func(t *testing.T) {
			tg, err := d.Prepare(&ep)
			if err != nil {
				t.Fatal(err)
			}
			r := send(t, tg, message("evt_creds", ""))
			if r.Outcome != destination.Permanent || !strings.Contains(r.Error, "access denied") {
				t.Fatalf("outcome = %s (%q), want permanent: access denied", r.Outcome, r.Error)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
