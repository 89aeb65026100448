package db

import "fmt"

// SchemaVersion is the compatibility level of this herald with the
// database schema. The database records, in herald_schema_versions, the
// lowest level a herald must have to use it (its floor); every herald
// since schema version 1 refuses a database whose floor is above its own
// SchemaVersion.
//
// Most migrations leave both alone: on PostgreSQL every migration keeps
// the previous release working (expand, then contract a release later, see
// docs/upgrading.md), so an older herald may go on running on a schema a
// newer one migrated. When a release stops using something a contract
// migration will remove, it raises SchemaVersion; the contract migration,
// a release later, raises the floor to that number (an INSERT into
// herald_schema_versions in its file), so that the heralds that still use
// what it removes refuse the database instead of failing on it.
const SchemaVersion = 1

// SchemaTooNewError is the error of Open for a database whose schema a
// newer herald changed in a way this one cannot use.
type SchemaTooNewError struct {
	// Stored is the floor recorded in the database: the lowest schema
	// version a herald must know to use it.
	Stored int
	// Known is the version this binary knows (SchemaVersion).
	Known int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("the database needs a herald that knows schema version %d, newer than the version %d this herald knows: "+
		"a newer herald migrated it; upgrade herald to a release that knows schema version %d", e.Stored, e.Known, e.Stored)
}

// versionsTable records the floor: every schema version raised, with the
// time it was. The schema_version_1 migration creates it (heralds 8a13244
// and before created it themselves).
const versionsTable = "herald_schema_versions"
