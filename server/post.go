package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// jsonScalar is the schema's scalar of arbitrary JSON (event payloads,
// filters), which resolvers receive as json.RawMessage.
const jsonScalar = "JSON"

// postTransport is GraphQL over HTTP POST, as gqlgen's transport.POST,
// except that the values of JSON-typed variables are never decoded: they
// stay the bytes the caller sent (compacted), found by the types the
// operation declares for its variables. A 1 MiB batch of payloads is then
// a few scans of its bytes rather than a tree of Go values, a million of
// them for small objects, that the JSON scalar encodes again: decoding a
// large payload costs a sixth of the CPU and a tenth of the memory.
type postTransport struct {
	schema     *ast.Schema
	tokenLimit int
	// jsonTypes are the types whose values are, or hold, JSON scalars.
	jsonTypes map[string]bool
	// types caches each query's variable types by operation name.
	types *lru.LRU[opVariables]
}

// opVariables maps an operation name ("" for an anonymous one) to its
// variables' types.
type opVariables map[string]map[string]*ast.Type

// maxCachedQuery is the longest query whose variable types are cached:
// an application's operations are far shorter, and the cache's thousand
// entries must not hold a caller's thousand largest documents.
const maxCachedQuery = 16 << 10

// newPOSTTransport returns the transport for schema, parsing queries with
// the executor's token limit.
func newPOSTTransport(schema *ast.Schema, tokenLimit int) postTransport {
	return postTransport{schema: schema, tokenLimit: tokenLimit, jsonTypes: typesHoldingJSON(schema), types: lru.New[opVariables](1000)}
}

var _ graphql.Transport = postTransport{}

// Supports implements graphql.Transport: POST with a JSON body.
func (t postTransport) Supports(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("Upgrade") != "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mediaType == "application/json"
}

// Do implements graphql.Transport.
func (t postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", contentType)
	start := graphql.Now()
	body, err := requestBody(r)
	if err != nil {
		writeGraphQLResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("could not read request body: %v", err)}))
		return
	}
	params, err := t.decode(ctx, body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeGraphQLResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("json request body could not be decoded: %v", err)}))
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		w.WriteHeader(protocolStatus(contentType, errs))
		writeGraphQLResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeGraphQLResponse(w, responses(ctx))
}

// decode reads a GraphQL request body. Variables whose declared type is
// JSON, or holds JSON in an input object or list, keep their bytes; the
// rest decode as gqlgen decodes them (numbers as json.Number). Without a
// query to read the types from (a persisted query sent by its hash) or
// when the query does not parse (gqlgen then reports why), every variable
// is decoded. The body is read with jsontext, which reads a payload's
// bytes a fixed number of times where encoding/json scans them again at
// each level of nesting.
func (t postTransport) decode(ctx context.Context, body []byte) (*graphql.RawParams, error) {
	// From a bytes.Buffer the decoder reads body in place: the values it
	// returns are slices of body, which no one changes.
	dec := jsontext.NewDecoder(bytes.NewBuffer(body), jsonOptions...)
	if tok, err := dec.ReadToken(); err != nil {
		return nil, err
	} else if tok.Kind() != '{' {
		return nil, errors.New("the body must be a JSON object")
	}
	params := &graphql.RawParams{}
	var vars jsontext.Value
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		if tok.Kind() == '}' {
			break
		}
		switch name := tok.String(); name {
		case "query", "operationName":
			s, err := readString(dec, name)
			if err != nil {
				return nil, err
			}
			if name == "query" {
				params.Query = s
			} else {
				params.OperationName = s
			}
		case "variables", "extensions":
			v, err := dec.ReadValue()
			if err != nil {
				return nil, err
			}
			if k := v.Kind(); k != '{' && k != 'n' {
				return nil, fmt.Errorf("%s must be an object", name)
			}
			if name == "variables" {
				vars = v
			} else if ext, err := decodeAny(v); err != nil {
				return nil, err
			} else if ext != nil {
				params.Extensions = ext.(map[string]any)
			}
		default:
			if _, err := dec.ReadValue(); err != nil {
				return nil, err
			}
		}
	}
	if len(vars) == 0 || vars.Kind() == 'n' {
		return params, nil
	}
	types := t.variableTypes(ctx, params.Query, params.OperationName)
	if types == nil {
		v, err := decodeAny(vars)
		if err != nil {
			return nil, err
		}
		params.Variables = v.(map[string]any)
		return params, nil
	}
	v, err := t.readObject(jsontext.NewDecoder(bytes.NewBuffer(vars), jsonOptions...), func(name string) *ast.Type { return types[name] })
	if err != nil {
		return nil, fmt.Errorf("variables: %w", err)
	}
	params.Variables = v
	return params, nil
}

// jsonOptions read JSON as encoding/json does: duplicate names (the last
// wins where decoded) and invalid UTF-8 (replaced where decoded; a JSON
// value holding it is decoded, see read).
var jsonOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// readString reads a string or null member of the request.
func readString(dec *jsontext.Decoder, name string) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", err
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case 'n':
		return "", nil
	}
	return "", fmt.Errorf("%s must be a string", name)
}

// variableTypes returns the types of the variables of the operation that
// a request runs, nil if the query does not say.
func (t postTransport) variableTypes(ctx context.Context, query, operation string) map[string]*ast.Type {
	if query == "" {
		return nil
	}
	ops, ok := t.types.Get(ctx, query)
	if !ok {
		doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, t.tokenLimit)
		if err != nil {
			return nil
		}
		ops = make(opVariables, len(doc.Operations))
		for _, op := range doc.Operations {
			vars := make(map[string]*ast.Type, len(op.VariableDefinitions))
			for _, d := range op.VariableDefinitions {
				vars[d.Variable] = d.Type
			}
			ops[op.Name] = vars
		}
		if len(query) <= maxCachedQuery {
			t.types.Add(ctx, query, ops)
		}
	}
	if operation == "" && len(ops) == 1 {
		for _, vars := range ops {
			return vars
		}
	}
	return ops[operation]
}

// readObject reads a JSON object whose members have the types typeOf
// gives (nil: unknown).
func (t postTransport) readObject(dec *jsontext.Decoder, typeOf func(string) *ast.Type) (map[string]any, error) {
	if _, err := dec.ReadToken(); err != nil { // {
		return nil, err
	}
	out := make(map[string]any)
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		if tok.Kind() == '}' {
			return out, nil
		}
		name := tok.String()
		v, err := t.read(dec, typeOf(name))
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
}

// read reads the next value for its declared type (nil: unknown): a JSON
// scalar as its compacted bytes, lists and input objects that hold one
// member by member, anything else decoded.
func (t postTransport) read(dec *jsontext.Decoder, typ *ast.Type) (any, error) {
	k := dec.PeekKind()
	if k == 0 { // an error, which reading reports
		_, err := dec.ReadToken()
		return nil, err
	}
	if typ == nil || !t.holdsJSON(typ) || k == 'n' {
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		return decodeAny(v)
	}
	if typ.Elem != nil {
		if k != '[' {
			// A single value where a list is declared: GraphQL makes it a
			// list of one.
			v, err := t.read(dec, typ.Elem)
			return []any{v}, err
		}
		if _, err := dec.ReadToken(); err != nil { // [
			return nil, err
		}
		out := []any{}
		for dec.PeekKind() != ']' {
			v, err := t.read(dec, typ.Elem)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		_, err := dec.ReadToken() // ]
		return out, err
	}
	if typ.NamedType == jsonScalar {
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(v) {
			// Decoded, invalid bytes become U+FFFD, as they did before
			// payloads kept their bytes; the scalar encodes it again.
			return decodeAny(v)
		}
		v = v.Clone()
		if err := v.Compact(); err != nil {
			return nil, err
		}
		return json.RawMessage(v), nil
	}
	def := t.schema.Types[typ.NamedType]
	if k != '{' {
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		return decodeAny(v) // the validator explains what is wrong
	}
	return t.readObject(dec, func(name string) *ast.Type {
		if f := def.Fields.ForName(name); f != nil {
			return f.Type
		}
		return nil
	})
}

// holdsJSON reports whether a value of typ is, or contains, a JSON
// scalar.
func (t postTransport) holdsJSON(typ *ast.Type) bool {
	for typ.Elem != nil {
		typ = typ.Elem
	}
	return t.jsonTypes[typ.NamedType]
}

// typesHoldingJSON returns the names of the schema's JSON scalar and of
// the input types with a JSON value somewhere below, found once: an input
// type holds JSON if a field's type does, until no more are found (input
// types may refer to each other).
func typesHoldingJSON(schema *ast.Schema) map[string]bool {
	holds := map[string]bool{jsonScalar: true}
	for found := true; found; {
		found = false
		for name, def := range schema.Types {
			if def.Kind != ast.InputObject || holds[name] {
				continue
			}
			for _, f := range def.Fields {
				ft := f.Type
				for ft.Elem != nil {
					ft = ft.Elem
				}
				if holds[ft.NamedType] {
					holds[name], found = true, true
					break
				}
			}
		}
	}
	return holds
}

// decodeAny decodes JSON as gqlgen's transports do. raw is one value as
// jsontext read it: a string, a number or a literal (most variables: IDs,
// names) is taken as it is, without a decoder.
func decodeAny(raw []byte) (any, error) {
	switch v := jsontext.Value(raw); v.Kind() {
	case '"':
		if s, err := jsontext.AppendUnquote(nil, v); err == nil {
			return string(s), nil
		} // invalid UTF-8 and the like: as encoding/json does, below
	case '0':
		if start, end := raw[0], raw[len(raw)-1]; (start == '-' || start >= '0' && start <= '9') && end >= '0' && end <= '9' {
			return json.Number(raw), nil
		}
	case 't', 'f', 'n':
		switch string(raw) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// responseContentType chooses the answer's media type from the Accept
// header as gqlgen's transport does: application/json unless the client
// asks for application/graphql-response+json (or for neither).
func responseContentType(accept string) string {
	const graphqlResponse = "application/graphql-response+json"
	if accept == "" {
		return "application/json"
	}
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "*/*", "application/*", "application/json":
			return "application/json"
		case graphqlResponse:
			return graphqlResponse
		}
	}
	return graphqlResponse
}

// protocolStatus is the HTTP status of a request the executor refused:
// 422 (application/json) or 400 (application/graphql-response+json) for
// a protocol error such as a parse or validation failure, else 200.
func protocolStatus(contentType string, errs gqlerror.List) int {
	if errcode.GetErrorKind(errs) != errcode.KindProtocol {
		return http.StatusOK
	}
	if contentType == "application/json" {
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}

// writeGraphQLResponse writes an answer as gqlgen's transports do.
func writeGraphQLResponse(w io.Writer, resp *graphql.Response) {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(&graphql.Response{Errors: gqlerror.List{gqlerror.Errorf("encode the answer: %v", err)}})
	}
	_, _ = w.Write(b)
}
