package db

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/jackc/pgx/v5"
)

// Mutex is a named lock that one holder at a time may take across every
// replica of a database: a PostgreSQL session-level advisory lock, held
// on a connection of its own so that it is released when its holder
// unlocks or dies (the connection ends). With SQLite, where one process
// uses the database, it is a lock within the process.
//
// A holder whose connection breaks (the server restarts) loses the lock
// without noticing until it unlocks: use it to keep replicas from doing
// the same work at the same time, not to fence writes.
type Mutex struct {
	d    *DB
	name string
	key  int64
}

// Mutex returns the lock called name. Herald's locks are "migrate" (schema
// changes) and "retention" (pruning); the key of each is derived from its
// name (LockKey).
func (d *DB) Mutex(name string) *Mutex {
	return &Mutex{d: d, name: name, key: LockKey(name)}
}

// LockKey returns the PostgreSQL advisory lock key of the named lock: a
// hash of "herald:" and the name, so that Herald's locks do not collide
// with each other or, most likely, with other applications' on the same
// database.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("herald:" + name))
	return int64(h.Sum64())
}

// Lock waits for the lock (or for ctx to end) and returns the function
// that releases it.
func (m *Mutex) Lock(ctx context.Context) (unlock func(), err error) {
	unlock, ok, err := m.lock(ctx, true)
	if err == nil && !ok {
		err = fmt.Errorf("lock %s: not granted", m.name)
	}
	return unlock, err
}

// TryLock takes the lock if nobody holds it. ok is false, with a nil
// error, when somebody does.
func (m *Mutex) TryLock(ctx context.Context) (unlock func(), ok bool, err error) {
	return m.lock(ctx, false)
}

func (m *Mutex) lock(ctx context.Context, wait bool) (func(), bool, error) {
	if m.d.dialect != dialect.Postgres {
		v, _ := m.d.sqliteMu.LoadOrStore(m.name, &sync.Mutex{})
		mu := v.(*sync.Mutex)
		if wait {
			mu.Lock()
		} else if !mu.TryLock() {
			return nil, false, nil
		}
		return mu.Unlock, true, nil
	}
	conn, err := pgx.ConnectConfig(ctx, m.d.ConnConfig())
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: connect: %w", m.name, err)
	}
	ok := true
	if wait {
		_, err = conn.Exec(ctx, "SELECT pg_advisory_lock($1)", m.key)
	} else {
		err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", m.key).Scan(&ok)
	}
	if err != nil || !ok {
		conn.Close(context.Background())
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", m.name, err)
		}
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// Unlock explicitly: the server releases a closed session's
			// locks only once its backend has exited, a moment after the
			// connection closes, and the next holder must not find it
			// still taken. Ending the session releases the lock anyway
			// if the unlock cannot be sent.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", m.key)
			conn.Close(ctx)
		})
	}, true, nil
}
