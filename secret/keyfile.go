package secret

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// ParseKeys reads keys written "<id>:<key>", separated by commas or line
// breaks, the key being KeySize bytes in standard base64 or hex. Blank
// lines and lines starting with '#' are ignored. This is the form of
// HERALD_ENCRYPTION_KEYS and of key files. Errors name the key's id or
// position, never its bytes.
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	n := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, item := range strings.Split(line, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			n++
			id, enc, ok := strings.Cut(item, ":")
			id, enc = strings.TrimSpace(id), strings.TrimSpace(enc)
			if !ok || id == "" || enc == "" {
				return nil, fmt.Errorf("secret: key %d is not written <id>:<base64 key>", n)
			}
			b, err := decodeKey(enc)
			if err != nil {
				return nil, fmt.Errorf("secret: key %q: %w", id, err)
			}
			keys = append(keys, Key{ID: id, Bytes: b})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("secret: read keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("secret: no key given; write keys as <id>:<base64 of 32 random bytes>")
	}
	return keys, nil
}

func decodeKey(enc string) ([]byte, error) {
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if b, err := dec(enc); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not %d bytes in base64 or hex (make one with: head -c %d /dev/urandom | base64)", KeySize, KeySize)
}

// ReadKeyFile reads the keys of a key file (see ParseKeys). It refuses a
// file that others than its owner may read.
func ReadKeyFile(path string) ([]Key, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret: key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret: key file %s is readable by others (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret: key file: %w", err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return keys, nil
}

// CreateKeyFile writes a new key file with one generated key, readable by
// its owner only (mode 0600), and returns the key. It fails if the file
// exists.
func CreateKeyFile(path string, now time.Time) (Key, error) {
	k, err := GenerateKey(now)
	if err != nil {
		return Key{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, fmt.Errorf("secret: create key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "# Herald's encryption keys, one <id>:<base64 key> a line; the first encrypts, all decrypt.\n"+
		"# Created %s. Keep a copy somewhere else than the database: without it the secrets it holds are lost.\n%s\n",
		now.UTC().Format(time.RFC3339), k.Encode())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return Key{}, fmt.Errorf("secret: write key file: %w", err)
	}
	return k, nil
}

// Exists reports whether a file exists at path.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
