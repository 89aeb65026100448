// Package awsemu runs an emulator of Amazon SQS and SNS for tests: kumo
// (github.com/sivchari/kumo), an in-process implementation of the AWS
// APIs that speaks the protocols the current AWS SDK does (JSON for SQS,
// query for SNS), with FIFO queues and topics, deduplication and SNS
// subscriptions delivering to SQS queues.
//
// kumo accepts any credentials. In front of it, the emulator checks each
// request's Signature Version 4 with the AWS SDK's own signer, as AWS
// does, and answers an unknown access key or a wrong secret with the
// error AWS gives (InvalidClientTokenId, SignatureDoesNotMatch), so that
// tests can prove what a wrong credential does. The front also counts the
// connections clients have open and can answer one queue's or topic's
// requests with AWS's throttling error, as a fault injected for a test.
package awsemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sivchari/kumo"
)

// Region is the region clients of the emulator use.
const Region = "us-east-1"

// Account is the account ID in the emulator's queue URLs and topic ARNs.
const Account = "000000000000"

// Emulator is a running SQS and SNS emulator.
type Emulator struct {
	// URL is the emulator's endpoint, http://127.0.0.1:port: an endpoint's
	// endpointUrl.
	URL string
	// Addr is its host:port.
	Addr string
	// AccessKeyID and SecretAccessKey are the credentials it accepts.
	AccessKeyID, SecretAccessKey string

	backend   string // kumo's own URL, for the test's own clients
	mu        sync.Mutex
	conns     map[net.Conn]bool
	throttled map[string]bool
	groups    map[string]string
}

// Start starts an emulator for the test and stops it when the test ends.
func Start(t testing.TB) *Emulator {
	t.Helper()
	k := kumo.NewServer()
	t.Cleanup(k.Close)
	backend, err := url.Parse(k.URL)
	if err != nil {
		t.Fatal(err)
	}
	e := &Emulator{backend: k.URL, AccessKeyID: "AKIAHERALDTEST000001", SecretAccessKey: "herald-test-secret-access-key-0123456789",
		conns: map[net.Conn]bool{}, throttled: map[string]bool{}, groups: map[string]string{}}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if code, msg := e.authenticate(r, body); code != "" {
			writeError(w, r, http.StatusForbidden, code, msg)
			return
		}
		if name := e.throttledResource(r, body); name != "" {
			writeError(w, r, http.StatusBadRequest, throttleCode(r), "Rate exceeded for "+name)
			return
		}
		e.record(r, body)
		proxy.ServeHTTP(w, r)
	}))
	front.Config.ConnState = func(c net.Conn, s http.ConnState) {
		e.mu.Lock()
		defer e.mu.Unlock()
		switch s {
		case http.StateNew:
			e.conns[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(e.conns, c)
		}
	}
	front.Start()
	t.Cleanup(front.Close)
	e.URL = front.URL
	e.Addr = strings.TrimPrefix(front.URL, "http://")
	return e
}

// names numbers the names Name returns, across every emulator of the
// process.
var names atomic.Int64

// Name returns base made unique in the process, keeping a .fifo suffix
// last: kumo keeps its queues, topics and subscriptions in package-level
// state that every emulator of a test binary shares, so two tests (or two
// runs of one, -count) that create the same name would share the queue,
// and a topic subscribed twice would deliver each message twice.
func Name(base string) string {
	n := strconv.FormatInt(names.Add(1), 10)
	if b, ok := strings.CutSuffix(base, ".fifo"); ok {
		return b + "-" + n + ".fifo"
	}
	return base + "-" + n
}

// Conns returns how many connections clients have open to the emulator.
func (e *Emulator) Conns() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

// Throttle makes the emulator answer every request about the queue or
// topic called name with AWS's throttling error.
func (e *Emulator) Throttle(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.throttled[name] = true
}

// config returns the AWS configuration of the test's own clients: they
// talk to kumo directly, so that the front counts only the connections of
// the code under test.
func (e *Emulator) config() aws.Config {
	return aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider(e.AccessKeyID, e.SecretAccessKey, ""),
		BaseEndpoint: aws.String(e.backend)}
}

// SQS returns a client of the emulator's SQS API, for the test's own
// calls (creating queues, consuming).
func (e *Emulator) SQS() *sqs.Client { return sqs.NewFromConfig(e.config()) }

// SNS returns a client of the emulator's SNS API, for the test's own
// calls.
func (e *Emulator) SNS() *sns.Client { return sns.NewFromConfig(e.config()) }

// QueueURL returns the URL of the queue called name, as the emulator at
// addr names it.
func QueueURL(addr, name string) string { return "http://" + addr + "/" + Account + "/" + name }

// TopicARN returns the ARN of the topic called name.
func TopicARN(name string) string { return "arn:aws:sns:" + Region + ":" + Account + ":" + name }

// Group returns the message group of the message sent with the
// deduplication ID id (kumo keeps groups but does not return them when
// messages are received, so the front notes them on the way in).
func (e *Emulator) Group(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.groups[id]
}

// record notes the message group of each FIFO message sent or published.
func (e *Emulator) record(r *http.Request, body []byte) {
	var group, dedup string
	if r.Header.Get("X-Amz-Target") != "" {
		var in struct{ MessageGroupId, MessageDeduplicationId string }
		if json.Unmarshal(body, &in) != nil {
			return
		}
		group, dedup = in.MessageGroupId, in.MessageDeduplicationId
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return
		}
		group, dedup = form.Get("MessageGroupId"), form.Get("MessageDeduplicationId")
	}
	if dedup != "" {
		e.mu.Lock()
		e.groups[dedup] = group
		e.mu.Unlock()
	}
}

// authenticate checks the request's Signature Version 4 as AWS does and
// returns AWS's error code and message if it is wrong ("" if right).
func (e *Emulator) authenticate(r *http.Request, body []byte) (code, msg string) {
	auth := r.Header.Get("Authorization")
	const alg = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, alg) {
		return "MissingAuthenticationToken", "Request is missing Authentication Token"
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, alg), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/") // key/date/region/service/aws4_request
	if len(scope) != 5 {
		return "IncompleteSignature", "Authorization header requires a Credential of the form key/date/region/service/aws4_request."
	}
	if scope[0] != e.AccessKeyID {
		return "InvalidClientTokenId", "The security token included in the request is invalid."
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "IncompleteSignature", "Authorization header requires an X-Amz-Date header."
	}
	// Sign the request again, with the headers the client signed, and
	// compare.
	again, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return "IncompleteSignature", err.Error()
	}
	again.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	if !strings.Contains(";"+fields["SignedHeaders"]+";", ";content-length;") {
		again.ContentLength = 0
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: e.AccessKeyID, SecretAccessKey: e.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), scope[3], scope[2], signedAt); err != nil {
		return "IncompleteSignature", err.Error()
	}
	if !strings.HasSuffix(again.Header.Get("Authorization"), "Signature="+fields["Signature"]) {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
	}
	return "", ""
}

// throttledResource returns the name of the throttled queue or topic the
// request is about, if any.
func (e *Emulator) throttledResource(r *http.Request, body []byte) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name := range e.throttled {
		if bytes.Contains(body, []byte("/"+name+`"`)) || bytes.Contains(body, []byte("%3A"+name+"&")) || bytes.HasSuffix(body, []byte("%3A"+name)) {
			return name
		}
	}
	return ""
}

func throttleCode(r *http.Request) string {
	if r.Header.Get("X-Amz-Target") != "" {
		return "RequestThrottled" // SQS
	}
	return "Throttling" // SNS
}

// writeError answers as AWS does in the request's protocol: JSON (SQS,
// with the query-compatible code in x-amzn-query-error) or query XML
// (SNS).
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if r.Header.Get("X-Amz-Target") != "" {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("x-amzn-query-error", code+";Sender")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":"com.amazonaws.sqs#%s","message":%q}`, code, msg)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>herald-test</RequestId></ErrorResponse>`, code, msg)
}
