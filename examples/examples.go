// Package examples holds what the repository's examples share with the
// server: the example event catalog (catalog.json), embedded so that
// `herald serve --dev` (make run) and the tests' servers load it wherever
// they run. The example programs live in the directories below.
package examples

import _ "embed"

// Catalog is the example catalog: commerce, contact, subscription,
// learning and email event types, in the format `herald catalog import`
// reads and `herald catalog export` writes (package catalog's File).
//
//go:embed catalog.json
var Catalog []byte
