package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/client"
)

func (c *cli) catalogCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Import and export event catalogs as files",
		Long: `Keep an event catalog in a file (in your platform's repository, say) and
apply it from CI: "herald catalog export" writes a catalog as a file and
"herald catalog import FILE" makes a catalog what the file says. Importing
the same file again changes nothing.

By default both act on the shared catalog of the app the key acts in (the
default catalog for most installations), which needs an admin key to
change; --catalog names another (by ID or name) and --own acts on the
app's own types instead. The file format is in docs/catalog.md; the
repository's examples/catalog.json is one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(c.catalogImportCmd(), c.catalogExportCmd())
	return cmd
}

// catalogTarget is the catalog a command acts on.
type catalogTarget struct {
	catalog string
	own     bool
}

func (t *catalogTarget) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.catalog, "catalog", "", "the shared catalog, by ID (cat_…) or name (default: the one of the app the key acts in)")
	cmd.Flags().BoolVar(&t.own, "own", false, "the app's own event types instead of a shared catalog")
}

// resolve returns the catalog's ID, "" for the app's own types.
func (t *catalogTarget) resolve(ctx context.Context, cl *client.Client) (id, name string, err error) {
	switch {
	case t.own && t.catalog != "":
		return "", "", usageErrorf("--own and --catalog exclude each other")
	case t.own:
		return "", "", nil
	case t.catalog != "":
		cat, err := cl.FindCatalog(ctx, t.catalog)
		if err != nil {
			return "", "", err
		}
		return cat.ID, cat.Name, nil
	}
	cat, err := cl.AppCatalog(ctx)
	if err != nil {
		return "", "", err
	}
	return cat.ID, cat.Name, nil
}

func (c *cli) catalogImportCmd() *cobra.Command {
	var target catalogTarget
	var archiveMissing, dryRun bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Make a catalog what a catalog file says (- reads standard input)",
		Long: `Make a catalog what a catalog file says, in one transaction: create the
types that are missing, update those whose description, example, JSON Schema
or archived state differ. Importing the same file again changes nothing.

Types the file leaves out stay as they are, unless --archive-missing
archives them (never deletes: events and endpoints refer to them).
Herald's system types (test.ping, webhook.*) are in every catalog and never
in files. --dry-run shows what would change without changing anything.`,
		Example: `  herald catalog import catalog.json
  herald catalog import --catalog staging --archive-missing catalog.json
  herald catalog export --catalog production | herald catalog import --catalog staging -`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readFile(args[0], c.stdin)
			if err != nil {
				return err
			}
			f, err := catalog.ParseFile(data)
			if err != nil {
				return usageErrorf("%s: %v", args[0], err)
			}
			in := client.ImportEventTypesInput{EventTypes: make([]client.EventTypeDefinitionInput, len(f.EventTypes))}
			for i, d := range f.EventTypes {
				in.EventTypes[i] = definitionInput(d)
			}
			if archiveMissing {
				in.ArchiveMissing = &archiveMissing
			}
			if dryRun {
				in.DryRun = &dryRun
			}
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				id, name, err := target.resolve(ctx, cl)
				if err != nil {
					return err
				}
				res, err := cl.ImportEventTypes(ctx, id, in)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, res)
				}
				printImport(c.stdout, res, name)
				return nil
			})
		},
	}
	target.register(cmd)
	cmd.Flags().BoolVar(&archiveMissing, "archive-missing", false, "archive the catalog's types that the file leaves out")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change, change nothing")
	return cmd
}

// readFile reads a file, or standard input for "-".
func readFile(name string, stdin io.Reader) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if name == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, usageErrorf("read %s: %v", name, err)
	}
	return b, nil
}

func definitionInput(d catalog.Definition) client.EventTypeDefinitionInput {
	in := client.EventTypeDefinitionInput{Name: d.Name}
	if d.Description != "" {
		in.Description = &d.Description
	}
	if len(d.Example) > 0 {
		in.Example = &d.Example
	}
	if len(d.JSONSchema) > 0 {
		in.JsonSchema = &d.JSONSchema
	}
	if d.Archived {
		in.Archived = &d.Archived
	}
	return in
}

func printImport(w io.Writer, res *client.ImportResult, catalogName string) {
	where := "the app's own types"
	if catalogName != "" {
		where = fmt.Sprintf("catalog %q", catalogName)
	}
	verb := "Imported into"
	if res.DryRun {
		verb = "Dry run (nothing changed) of an import into"
	}
	fmt.Fprintf(w, "%s %s: %d created, %d updated, %d archived, %d unarchived, %d unchanged.\n",
		verb, where, len(res.Created), len(res.Updated), len(res.Archived), len(res.Unarchived), res.Unchanged)
	for _, g := range []struct {
		label string
		names []string
	}{{"created", res.Created}, {"updated", res.Updated}, {"archived", res.Archived}, {"unarchived", res.Unarchived}} {
		if len(g.names) > 0 {
			fmt.Fprintf(w, "  %-10s %s\n", g.label+":", strings.Join(g.names, ", "))
		}
	}
}

func (c *cli) catalogExportCmd() *cobra.Command {
	var target catalogTarget
	cmd := &cobra.Command{
		Use:   "export [FILE]",
		Short: "Write a catalog as a catalog file (to standard output without FILE)",
		Long: `Write a catalog's event types as a catalog file, in name order, archived
ones included: the file that "herald catalog import" reads. Herald's system
types (test.ping, webhook.*) are left out: every catalog has them.`,
		Example: `  herald catalog export > catalog.json
  herald catalog export --own catalog-app.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.with(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
				id, _, err := target.resolve(ctx, cl)
				if err != nil {
					return err
				}
				f, err := exportCatalog(ctx, cl, id)
				if err != nil {
					return err
				}
				b, err := f.Marshal()
				if err != nil {
					return err
				}
				if len(args) == 0 || args[0] == "-" {
					_, err = c.stdout.Write(b)
					return err
				}
				if err := os.WriteFile(args[0], b, 0o644); err != nil {
					return fmt.Errorf("write %s: %w", args[0], err)
				}
				fmt.Fprintf(c.stderr, "Wrote %d event types to %s.\n", len(f.EventTypes), args[0])
				return nil
			})
		},
	}
	target.register(cmd)
	return cmd
}

// exportCatalog reads a shared catalog's types (catalogID), or the app's
// own (""), as a catalog file.
func exportCatalog(ctx context.Context, cl *client.Client, catalogID string) (*catalog.File, error) {
	f := &catalog.File{EventTypes: []catalog.Definition{}}
	after := ""
	for {
		var (
			p   *client.Page[client.EventType]
			err error
		)
		if catalogID != "" {
			p, err = cl.CatalogEventTypes(ctx, catalogID, 100, after)
		} else {
			p, err = cl.EventTypes(ctx, 100, after)
		}
		if err != nil {
			return nil, err
		}
		for _, et := range p.Items {
			if et.BuiltIn || (catalogID == "" && et.Shared) {
				continue
			}
			f.EventTypes = append(f.EventTypes, definitionOf(et))
		}
		if !p.HasNextPage {
			return f, nil
		}
		after = p.EndCursor
	}
}

func definitionOf(et client.EventType) catalog.Definition {
	d := catalog.Definition{Name: et.Name, Description: et.Description, Archived: et.ArchivedAt != nil}
	if et.Example != nil && string(*et.Example) != "null" {
		d.Example = json.RawMessage(*et.Example)
	}
	if et.JsonSchema != nil && string(*et.JsonSchema) != "null" {
		d.JSONSchema = json.RawMessage(*et.JsonSchema)
	}
	return d
}
