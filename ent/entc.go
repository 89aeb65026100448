//go:build ignore

// Command entc generates the ent client and the entgql GraphQL schema
// (graph/ent.graphqls) from ent/schema. Run it through `make generate`.
package main

import (
	"log"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
)

func main() {
	ex, err := entgql.NewExtension(
		entgql.WithConfigPath("./gqlgen.yml"),
		entgql.WithSchemaGenerator(),
		entgql.WithSchemaPath("./graph/ent.graphqls"),
		entgql.WithWhereInputs(true),
		entgql.WithNodeDescriptor(false),
	)
	if err != nil {
		log.Fatalf("create entgql extension: %v", err)
	}
	err = entc.Generate("./ent/schema", &gen.Config{
		Target:  "./ent",
		Package: "github.com/heraldhq/herald/ent",
		Features: []gen.Feature{
			gen.FeatureIntercept,
			gen.FeatureModifier,
			gen.FeatureExecQuery,
			gen.FeatureUpsert,
		},
	}, entc.Extensions(ex))
	if err != nil {
		log.Fatalf("run ent codegen: %v", err)
	}
}
