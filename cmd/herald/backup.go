package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/heraldhq/herald/db"
)

// backupCmd runs `herald backup`: a consistent copy of a SQLite database,
// taken while herald serves it.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: herald backup [--db DB] --out FILE

Copies the SQLite database into FILE (which must not exist) while herald
serves it, checks the copy (PRAGMA integrity_check) and syncs it to disk.
To restore, stop herald, delete the database's -wal and -shm files and copy
FILE over the database (docs/backups.md).
`)
		fs.PrintDefaults()
	}
	src := fs.String("db", envOr("HERALD_DB", "herald.db"), "the SQLite database to copy ($HERALD_DB)")
	out := fs.String("out", "", "the backup file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *out == "" {
		fs.Usage()
		return errors.New("backup: name the backup file with --out")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Yield the CPU to the herald serving the database: the copy and its
	// check may take a while, publishing should not. On Linux a nice value
	// is a thread's: the backup runs on this goroutine, locked to this
	// thread, and SQLite's work happens in its calls.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, 0, 10)
	info, err := db.Backup(ctx, *src, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %.1f MiB, %d events, %d deliveries unfinished (due again after a restore); copied in %s, checked and synced in %s\n",
		*src, info.Path, float64(info.Bytes)/(1<<20), info.Events, info.Unfinished,
		info.Copy.Round(time.Millisecond), info.Took.Round(time.Millisecond))
	return nil
}
