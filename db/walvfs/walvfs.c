// A SQLite VFS that gathers a transaction's WAL frames into one write.
//
// SQLite writes each WAL frame as two write(2) calls, its 24-byte header and
// then its page, so a commit of twenty pages is forty system calls. This VFS
// wraps the default ("unix") VFS and, for WAL files only, keeps appended
// bytes in a buffer and writes them with one call when the frame that
// carries the commit mark is complete. It also writes the buffer before
// anything that must see the file as SQLite believes it is: a read, a sync,
// a truncation, a size query, a file control, a write elsewhere in the file,
// and closing. Every other file (the database, the shared-memory index,
// temporary files) is the unix VFS's own, untouched.
//
// A commit therefore reaches the operating system before sqlite3WalFrames
// returns, exactly as without this VFS: synchronous=NORMAL still survives
// the process being killed, and FULL still syncs. Frames of a transaction
// that is not yet committed may wait in the buffer; no reader uses them
// (readers stop at the last commit frame in the wal-index) and a crash
// loses nothing SQLite would keep.

#include <stdlib.h>
#include <string.h>

#include "walvfs.h"

// The WAL format (https://www.sqlite.org/fileformat2.html#walformat): a
// 32-byte header, whose bytes 8-11 are the page size, then frames of a
// 24-byte header and a page; bytes 4-7 of a frame header are non-zero
// only in a commit frame.
#define WAL_HEADER 32
#define FRAME_HEADER 24

// walBuffer is how many bytes one WAL file gathers before it writes them
// anyway: 30 frames of 4 KiB pages. The unix VFS writes less than 128 KiB
// a call (it masks the length with 0x1ffff), so a flush must stay below.
#define walBuffer (124 * 1024)

typedef struct walFile {
	sqlite3_file base;   // our methods, or the real file's when not a WAL
	sqlite3_file *real;  // the unix VFS's file, just after this struct
	unsigned char *buf;  // gathered bytes, allocated at the first write
	int len;             // bytes in buf
	sqlite3_int64 off;   // file offset of buf[0]
	int page;            // the WAL's page size; 0 until known
} walFile;

static sqlite3_vfs walVFS;
static sqlite3_vfs *rootVFS;

static unsigned int get32(const unsigned char *p) {
	return ((unsigned int)p[0] << 24) | ((unsigned int)p[1] << 16) | ((unsigned int)p[2] << 8) | p[3];
}

// validPage returns sz if it is a page size SQLite may use, else 0.
static int validPage(unsigned int sz) {
	return sz >= 512 && sz <= 65536 && (sz & (sz - 1)) == 0 ? (int)sz : 0;
}

// flush writes the gathered bytes, if any, with one call.
static int flush(walFile *f) {
	int rc;
	if (f->len == 0) return SQLITE_OK;
	rc = f->real->pMethods->xWrite(f->real, f->buf, f->len, f->off);
	f->len = 0;
	return rc;
}

// pageSize learns the WAL's page size from its header on disk.
static void pageSize(walFile *f) {
	unsigned char h[WAL_HEADER];
	if (f->page) return;
	if (f->real->pMethods->xRead(f->real, h, WAL_HEADER, 0) == SQLITE_OK) f->page = validPage(get32(h + 8));
}

// endsCommit reports whether the gathered bytes now end with a whole commit
// frame. When that frame's header was written out earlier (which only a
// sync in the middle of a frame does, with synchronous=FULL), or the page
// size is unknown, it answers yes: writing early is always safe.
static int endsCommit(walFile *f) {
	sqlite3_int64 end = f->off + f->len, start;
	sqlite3_int64 frame;
	if (f->page == 0) return 1;
	frame = FRAME_HEADER + (sqlite3_int64)f->page;
	if (end < WAL_HEADER + frame || (end - WAL_HEADER) % frame != 0) return 0;
	start = end - frame;
	if (start < f->off) return 1;
	return get32(f->buf + (start - f->off) + 4) != 0;
}

static int walWrite(sqlite3_file *file, const void *data, int n, sqlite3_int64 off) {
	walFile *f = (walFile *)file;
	int rc;
	if (off < WAL_HEADER) {
		// The WAL header, written when the log starts over: rare, and
		// where the page size is learnt.
		rc = flush(f);
		if (rc != SQLITE_OK) return rc;
		rc = f->real->pMethods->xWrite(f->real, data, n, off);
		if (rc == SQLITE_OK && off == 0 && n >= WAL_HEADER) f->page = validPage(get32((const unsigned char *)data + 8));
		return rc;
	}
	if (f->len > 0 && (off != f->off + f->len || f->len + n > walBuffer)) {
		rc = flush(f);
		if (rc != SQLITE_OK) return rc;
	}
	if (n > walBuffer) return f->real->pMethods->xWrite(f->real, data, n, off);
	if (f->buf == NULL) {
		f->buf = malloc(walBuffer);
		if (f->buf == NULL) return f->real->pMethods->xWrite(f->real, data, n, off);
	}
	if (f->page == 0) pageSize(f);
	if (f->len == 0) f->off = off;
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	if (endsCommit(f)) return flush(f);
	return SQLITE_OK;
}

static int walClose(sqlite3_file *file) {
	walFile *f = (walFile *)file;
	int rc = flush(f);
	int rc2 = f->real->pMethods->xClose(f->real);
	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int walRead(sqlite3_file *file, void *data, int n, sqlite3_int64 off) {
	walFile *f = (walFile *)file;
	int rc = flush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xRead(f->real, data, n, off);
}

static int walTruncate(sqlite3_file *file, sqlite3_int64 size) {
	walFile *f = (walFile *)file;
	int rc = flush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xTruncate(f->real, size);
}

static int walSync(sqlite3_file *file, int flags) {
	walFile *f = (walFile *)file;
	int rc = flush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xSync(f->real, flags);
}

static int walFileSize(sqlite3_file *file, sqlite3_int64 *size) {
	walFile *f = (walFile *)file;
	int rc = flush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xFileSize(f->real, size);
}

static int walLock(sqlite3_file *file, int lock) {
	walFile *f = (walFile *)file;
	return f->real->pMethods->xLock(f->real, lock);
}

static int walUnlock(sqlite3_file *file, int lock) {
	walFile *f = (walFile *)file;
	return f->real->pMethods->xUnlock(f->real, lock);
}

static int walCheckReservedLock(sqlite3_file *file, int *out) {
	walFile *f = (walFile *)file;
	return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int walFileControl(sqlite3_file *file, int op, void *arg) {
	walFile *f = (walFile *)file;
	int rc = flush(f);
	if (rc != SQLITE_OK) return rc;
	return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int walSectorSize(sqlite3_file *file) {
	walFile *f = (walFile *)file;
	return f->real->pMethods->xSectorSize(f->real);
}

static int walDeviceCharacteristics(sqlite3_file *file) {
	walFile *f = (walFile *)file;
	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

// A WAL file has no shared memory or memory map of its own; these forward
// to the real file in case a later SQLite asks anyway.
static int walShmMap(sqlite3_file *file, int pg, int size, int extend, void volatile **pp) {
	walFile *f = (walFile *)file;
	if (f->real->pMethods->iVersion < 2) return SQLITE_IOERR;
	return f->real->pMethods->xShmMap(f->real, pg, size, extend, pp);
}

static int walShmLock(sqlite3_file *file, int offset, int n, int flags) {
	walFile *f = (walFile *)file;
	if (f->real->pMethods->iVersion < 2) return SQLITE_IOERR;
	return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void walShmBarrier(sqlite3_file *file) {
	walFile *f = (walFile *)file;
	if (f->real->pMethods->iVersion >= 2) f->real->pMethods->xShmBarrier(f->real);
}

static int walShmUnmap(sqlite3_file *file, int del) {
	walFile *f = (walFile *)file;
	if (f->real->pMethods->iVersion < 2) return SQLITE_OK;
	return f->real->pMethods->xShmUnmap(f->real, del);
}

static int walFetch(sqlite3_file *file, sqlite3_int64 off, int n, void **pp) {
	walFile *f = (walFile *)file;
	int rc = flush(f);
	if (rc != SQLITE_OK) return rc;
	if (f->real->pMethods->iVersion < 3) {
		*pp = NULL;
		return SQLITE_OK;
	}
	return f->real->pMethods->xFetch(f->real, off, n, pp);
}

static int walUnfetch(sqlite3_file *file, sqlite3_int64 off, void *p) {
	walFile *f = (walFile *)file;
	if (f->real->pMethods->iVersion < 3) return SQLITE_OK;
	return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods walMethods = {
	3,
	walClose,
	walRead,
	walWrite,
	walTruncate,
	walSync,
	walFileSize,
	walLock,
	walUnlock,
	walCheckReservedLock,
	walFileControl,
	walSectorSize,
	walDeviceCharacteristics,
	walShmMap,
	walShmLock,
	walShmBarrier,
	walShmUnmap,
	walFetch,
	walUnfetch,
};

static int walOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *outFlags) {
	walFile *f = (walFile *)file;
	int rc;
	(void)vfs;
	if ((flags & SQLITE_OPEN_WAL) == 0) {
		// Not a WAL: the file is the unix VFS's, methods and all.
		return rootVFS->xOpen(rootVFS, name, file, flags, outFlags);
	}
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)&f[1];
	rc = rootVFS->xOpen(rootVFS, name, f->real, flags, outFlags);
	if (rc != SQLITE_OK) return rc;
	f->base.pMethods = &walMethods;
	return SQLITE_OK;
}

int herald_walvfs_register(void) {
	if (walVFS.zName != NULL) return SQLITE_OK;
	rootVFS = sqlite3_vfs_find(NULL);
	if (rootVFS == NULL) return SQLITE_ERROR;
	walVFS = *rootVFS;
	if (walVFS.iVersion > 3) walVFS.iVersion = 3; // the fields this file knows
	walVFS.pNext = NULL;
	walVFS.zName = HERALD_WALVFS_NAME;
	walVFS.szOsFile = (int)sizeof(walFile) + rootVFS->szOsFile;
	walVFS.xOpen = walOpen;
	return sqlite3_vfs_register(&walVFS, 0);
}
