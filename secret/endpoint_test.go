package secret

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/heraldhq/herald/webhook"
)

func plainEndpoint() Endpoint {
	return Endpoint{
		ID:              "ep_01",
		Signing:         "whsec_current000000000000000",
		PreviousSigning: "whsk_previous00000000000000",
		Auth:            webhook.Auth{Type: webhook.AuthOAuth2, TokenURL: "https://auth.example.com/token", ClientID: "herald", ClientSecret: "client-secret-000"},
		Headers: []webhook.Header{
			{Name: "X-Api-Key", Value: "header-key-000"},
			{Name: "X-Partner", Value: "partner-000", Secret: true},
			{Name: "X-Tenant", Value: "acme"},
		},
		Destination:        json.RawMessage(`{"password":"broker-password-000","url":"amqp://rabbit","port":5672}`),
		DestinationSecrets: []string{"password", "token"},
		TLS:                &webhook.TLS{ClientCertificate: "-----BEGIN CERTIFICATE-----", ClientKey: "-----BEGIN PRIVATE KEY-----tls-key-000"},
	}
}

func TestSealEndpoint_HidesEverySecretAndOpensBack(t *testing.T) {
	r := mustRing(t, testKey(t, "k1", 1))
	plain := plainEndpoint()
	sealed, err := r.SealEndpoint(plain)
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(sealed)
	for _, v := range plain.Values() {
		if strings.Contains(string(dump), v) {
			t.Errorf("sealed endpoint shows %q: %s", v, dump)
		}
	}
	if len(plain.Values()) != 7 {
		t.Errorf("Values = %q, want the 7 secrets", plain.Values())
	}
	for _, keep := range []string{"acme", "amqp://rabbit", "https://auth.example.com/token", "herald", "BEGIN CERTIFICATE", "5672"} {
		if !strings.Contains(string(dump), keep) {
			t.Errorf("sealed endpoint lost %q, which is not a secret: %s", keep, dump)
		}
	}
	opened, err := r.OpenEndpoint(sealed)
	if err != nil {
		t.Fatal(err)
	}
	opened.Headers[0].Secret = false // set by sealing: the name says it is secret
	var want, got map[string]any
	_ = json.Unmarshal(plain.Destination, &want)
	_ = json.Unmarshal(opened.Destination, &got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("destination opened as %s", opened.Destination)
	}
	opened.Destination, plain.Destination = nil, nil
	if !reflect.DeepEqual(opened, plain) {
		t.Errorf("opened endpoint\n %+v\nwant\n %+v", opened, plain)
	}
	if plain.Auth.ClientSecret != "client-secret-000" || plain.TLS.ClientKey != "-----BEGIN PRIVATE KEY-----tls-key-000" {
		t.Error("SealEndpoint modified its argument")
	}
}

func TestOpenEndpoint_RefusesSecretsOfAnotherRow(t *testing.T) {
	r := mustRing(t, testKey(t, "k1", 1))
	a, _ := r.SealEndpoint(plainEndpoint())
	b := plainEndpoint()
	b.ID = "ep_02"
	b, _ = r.SealEndpoint(b)
	b.Auth.ClientSecret = a.Auth.ClientSecret // moved from ep_01
	var wrong *WrongKeyError
	if _, err := r.OpenEndpoint(b); !errors.As(err, &wrong) {
		t.Errorf("opened a secret moved from another endpoint: %v", err)
	}
}

func TestSealEndpoint_ResealsUnderTheNewPrimary(t *testing.T) {
	old := mustRing(t, testKey(t, "k1", 1))
	sealed, _ := old.SealEndpoint(plainEndpoint())
	r := mustRing(t, testKey(t, "k2", 2), testKey(t, "k1", 1))
	again, err := r.SealEndpoint(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if KeyOf(again.Signing) != "k2" || KeyOf(again.Auth.ClientSecret) != "k2" || KeyOf(again.TLS.ClientKey) != "k2" {
		t.Errorf("resealed under %s/%s", KeyOf(again.Signing), KeyOf(again.Auth.ClientSecret))
	}
	only2 := mustRing(t, testKey(t, "k2", 2))
	if opened, err := only2.OpenEndpoint(again); err != nil || opened.Signing != plainEndpoint().Signing {
		t.Errorf("k2 alone does not open the resealed endpoint: %v", err)
	}
}

// BenchmarkOpenEndpoint opens an endpoint with every kind of secret: the
// engine's cost when it loads an endpoint's configuration (not per
// delivery: the configuration is cached with its secrets open).
func BenchmarkOpenEndpoint(b *testing.B) {
	r, err := NewKeyring(Key{ID: "k1", Bytes: make([]byte, KeySize)})
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := r.SealEndpoint(plainEndpoint())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.OpenEndpoint(sealed); err != nil {
			b.Fatal(err)
		}
	}
}
