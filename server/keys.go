package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"entgo.io/ent/dialect"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/secret"
)

// KeyFilePath is the key file Herald creates beside a SQLite database that
// has no encryption key configured.
func KeyFilePath(dbPath string) string { return dbPath + ".keys" }

// loadKeys returns the keyring of endpoints' secrets: from
// Config.EncryptionKeys, from Config.EncryptionKeyFile, or, for a SQLite
// database with neither, from the key file beside it, created on first
// start.
func loadKeys(cfg Config) (*secret.Keyring, error) {
	var (
		keys []secret.Key
		err  error
	)
	switch {
	case cfg.EncryptionKeys != "" && cfg.EncryptionKeyFile != "":
		return nil, errors.New("encryption keys: give them in HERALD_ENCRYPTION_KEYS or in --encryption-key-file, not both")
	case cfg.EncryptionKeys != "":
		if keys, err = secret.ParseKeys(cfg.EncryptionKeys); err != nil {
			return nil, fmt.Errorf("HERALD_ENCRYPTION_KEYS: %w", err)
		}
	case cfg.EncryptionKeyFile != "":
		if keys, err = secret.ReadKeyFile(cfg.EncryptionKeyFile); err != nil {
			return nil, err
		}
	case db.IsPostgres(cfg.DB):
		return nil, errors.New("encryption keys: with PostgreSQL, give every replica the same keys in " +
			"HERALD_ENCRYPTION_KEYS or --encryption-key-file (make one with: echo \"k1:$(head -c 32 /dev/urandom | base64)\")")
	default:
		path := KeyFilePath(cfg.DB)
		if secret.Exists(path) {
			if keys, err = secret.ReadKeyFile(path); err != nil {
				return nil, err
			}
			break
		}
		k, err := secret.CreateKeyFile(path, time.Now())
		if err != nil {
			return nil, err
		}
		keys = []secret.Key{k}
		cfg.Logger.Warn("created an encryption key file beside the database: a key beside the data protects copies "+
			"of the database (backups, dumps), not this machine; keep a copy of the key elsewhere, and give the key in "+
			"HERALD_ENCRYPTION_KEYS or --encryption-key-file from a secret store in production",
			"key_file", path, "key_id", k.ID)
	}
	return secret.NewKeyring(keys...)
}

// openSecrets checks that the keyring opens every endpoint's secrets,
// refusing to start otherwise with a message naming the key that is
// missing or wrong, and seals the secrets an earlier Herald stored in the
// clear (the data migration of encryption at rest), one replica at a
// time.
func openSecrets(ctx context.Context, d *db.DB, eps *endpoints.Service, log *slog.Logger) error {
	unlock, err := d.Mutex("secrets").Lock(ctx)
	if err != nil {
		return fmt.Errorf("encryption keys: %w", err)
	}
	defer unlock()
	if err := eps.CheckKeys(ctx); err != nil {
		if endpoints.IsKeyError(err) {
			return fmt.Errorf("refusing to start: %w", err)
		}
		return fmt.Errorf("encryption keys: %w", err)
	}
	_, plain, err := eps.KeyUses(ctx)
	if err != nil || plain == 0 {
		return err
	}
	return sealPlaintext(ctx, d, eps, log)
}

// sealPlaintext runs the data migration that encrypts the secrets of
// endpoints stored in the clear. On SQLite, the freed pages that held them
// are zeroed (secure_delete) and the WAL emptied, so that the plaintext
// leaves the files too.
func sealPlaintext(ctx context.Context, d *db.DB, eps *endpoints.Service, log *slog.Logger) error {
	sqlite := d.Dialect() == dialect.SQLite
	if sqlite {
		if _, err := d.Write.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
			return fmt.Errorf("encrypt stored secrets: %w", err)
		}
		defer d.Write.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = OFF") //nolint:errcheck // best effort
	}
	n, err := eps.SealPlaintext(ctx)
	if err != nil {
		return fmt.Errorf("encrypt stored secrets: %w", err)
	}
	if sqlite {
		if _, err := d.Write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			log.Warn("empty the WAL after encrypting stored secrets", "err", err)
		}
	}
	log.Info("encrypted the secrets stored in the clear", "endpoints", n, "key_id", eps.Secrets.Primary())
	return nil
}
