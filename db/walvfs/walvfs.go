// Package walvfs provides a SQLite VFS that writes each transaction's WAL
// frames with one system call instead of two per frame.
//
// SQLite appends a frame to the write-ahead log as two writes, its 24-byte
// header and then its page; a commit that changes twenty pages costs forty
// system calls, and on a virtual machine each costs microseconds. The VFS
// wraps SQLite's default unix VFS and, for WAL files only, gathers the
// appended bytes until the commit frame is complete, then writes them at
// once. Whatever must see the file as SQLite believes it is (a read, a
// sync, a truncation, a size query) writes the gathered bytes first, so a
// commit reaches the operating system before SQLite reports it, as it does
// without the VFS. Database files and the shared-memory index are the unix
// VFS's own.
package walvfs

/*
#include "walvfs.h"
*/
import "C"

import (
	"fmt"
	"sync"

	_ "github.com/mattn/go-sqlite3" // the SQLite this VFS registers with
)

// Name is the VFS's name, for a SQLite URI's vfs parameter
// (file:herald.db?vfs=herald-wal).
const Name = C.HERALD_WALVFS_NAME

// registered guards the registration: SQLite's list of VFSes is one per
// process, and so is this VFS.
var registered = sync.OnceValue(func() error {
	if rc := C.herald_walvfs_register(); rc != C.SQLITE_OK {
		return fmt.Errorf("register SQLite VFS %s: error code %d", Name, int(rc))
	}
	return nil
})

// Register makes the VFS available to SQLite connections opened after it
// returns. It may be called any number of times.
func Register() error {
	return registered()
}
