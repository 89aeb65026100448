package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKey(t testing.TB, id string, b byte) Key {
	t.Helper()
	return Key{ID: id, Bytes: bytes.Repeat([]byte{b}, KeySize)}
}

func mustRing(t testing.TB, keys ...Key) *Keyring {
	t.Helper()
	r, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKeyring_SealOpensWithItsAssociatedDataOnly(t *testing.T) {
	r := mustRing(t, testKey(t, "k1", 1))
	const plain = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sealed := r.Seal(plain, "endpoint/ep_1/secret")
	if !IsSealed(sealed) || KeyOf(sealed) != "k1" {
		t.Fatalf("Seal = %q, want a value sealed under k1", sealed)
	}
	if strings.Contains(sealed, plain) || strings.Contains(sealed, "MfKQ9r8G") {
		t.Fatalf("sealed value %q shows the plaintext", sealed)
	}
	if again := r.Seal(plain, "endpoint/ep_1/secret"); again == sealed {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	got, err := r.Open(sealed, "endpoint/ep_1/secret")
	if err != nil || got != plain {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	for _, ad := range []string{"endpoint/ep_2/secret", "endpoint/ep_1/previousSecret"} {
		_, err := r.Open(sealed, ad)
		var wrong *WrongKeyError
		if !errors.As(err, &wrong) {
			t.Errorf("opened for %s: %v, want a WrongKeyError (a value moved to another row or field must not open)", ad, err)
		}
	}
	if r.Seal("", "x") != "" {
		t.Error("the empty string must stay empty")
	}
	if got, err := r.Open("whsec_plain", "x"); err != nil || got != "whsec_plain" {
		t.Errorf("a plaintext value read back as %q, %v", got, err)
	}
}

func TestKeyring_FirstKeySealsEveryKeyOpens(t *testing.T) {
	old := mustRing(t, testKey(t, "k1", 1))
	sealed := old.Seal("token", "ad")
	r := mustRing(t, testKey(t, "k2", 2), testKey(t, "k1", 1))
	if got, err := r.Open(sealed, "ad"); err != nil || got != "token" {
		t.Fatalf("the second key does not open its value: %q, %v", got, err)
	}
	if k := KeyOf(r.Seal("token", "ad")); k != "k2" {
		t.Errorf("sealed under %s, want the first key k2", k)
	}
	if r.Primary() != "k2" || !r.Has("k1") || r.Has("k3") {
		t.Errorf("Primary %s, IDs %v", r.Primary(), r.IDs())
	}
}

func TestKeyring_MissingAndWrongKeysNameTheKey(t *testing.T) {
	sealed := mustRing(t, testKey(t, "k1", 1)).Seal("token", "ad")
	_, err := mustRing(t, testKey(t, "k2", 2)).Open(sealed, "ad")
	var missing *MissingKeyError
	if !errors.As(err, &missing) || missing.ID != "k1" || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("missing key: %v", err)
	}
	_, err = mustRing(t, testKey(t, "k1", 9)).Open(sealed, "ad")
	var wrong *WrongKeyError
	if !errors.As(err, &wrong) || wrong.ID != "k1" || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("wrong key: %v", err)
	}
}

func TestNewKeyring_RefusesBadKeys(t *testing.T) {
	for name, keys := range map[string][]Key{
		"none":      nil,
		"short":     {{ID: "k1", Bytes: make([]byte, 16)}},
		"bad id":    {{ID: "k 1", Bytes: make([]byte, KeySize)}},
		"duplicate": {testKey(t, "k1", 1), testKey(t, "k1", 2)},
	} {
		if _, err := NewKeyring(keys...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseKeys_ReadsEnvironmentAndFileForms(t *testing.T) {
	k1, k2 := testKey(t, "k1", 1), testKey(t, "k2", 2)
	for _, text := range []string{
		k2.Encode() + "," + k1.Encode(),
		"# comment\n\n" + k2.Encode() + "\n" + k1.Encode() + "\n",
		" k2 : " + strings.Repeat("02", KeySize) + " , " + k1.Encode(),
	} {
		keys, err := ParseKeys(text)
		if err != nil {
			t.Fatalf("ParseKeys(%q): %v", text, err)
		}
		if len(keys) != 2 || keys[0].ID != "k2" || !bytes.Equal(keys[1].Bytes, k1.Bytes) {
			t.Errorf("ParseKeys(%q) = %v", text, keys)
		}
	}
	for _, bad := range []string{"", "k1", "k1:c2hvcnQ=", "# only a comment"} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
	_, err := ParseKeys("k1:" + strings.Repeat("A", 10))
	if err == nil || strings.Contains(err.Error(), strings.Repeat("A", 10)) {
		t.Errorf("an error must not repeat the key: %v", err)
	}
	if s := k1.String(); strings.Contains(s, k1.Encode()[3:]) {
		t.Errorf("Key.String shows the key: %s", s)
	}
}

func TestCreateKeyFile_IsPrivateAndReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db.keys")
	k, err := CreateKeyFile(path, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	if !strings.HasPrefix(k.ID, "k20261201-") {
		t.Errorf("key id %q", k.ID)
	}
	keys, err := ReadKeyFile(path)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID || !bytes.Equal(keys[0].Bytes, k.Bytes) {
		t.Fatalf("ReadKeyFile = %v, %v", keys, err)
	}
	if _, err := CreateKeyFile(path, time.Now()); err == nil {
		t.Error("CreateKeyFile overwrote an existing file")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key file others may read: %v", err)
	}
}
