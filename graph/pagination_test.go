package graph_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// createEndpoints creates n endpoints named "hook 00".."hook NN" in a
// shuffled order and returns their IDs in creation order.
func createEndpoints(t *testing.T, c *heraldtest.Client, n int) []string {
	t.Helper()
	order := rand.Perm(n)
	ids := make([]string, n)
	for i, k := range order {
		ep, _ := createEndpoint(t, c, map[string]any{
			"name": fmt.Sprintf("hook %02d", k), "url": fmt.Sprintf("https://example.com/hook/%d", k), "isActive": false,
		})
		ids[i] = ep.ID
	}
	return ids
}

// page reads one page of endpoints.
func endpointPage(t *testing.T, c *heraldtest.Client, args string, vars map[string]any) connection {
	t.Helper()
	var decl []string
	for _, v := range []string{"after", "before"} {
		if strings.Contains(args, "$"+v) {
			decl = append(decl, "$"+v+": Cursor")
		}
	}
	q := "{ endpoints { " + connectionFields + " } }"
	if args != "" {
		q = "{ endpoints(" + args + ") { " + connectionFields + " } }"
	}
	if len(decl) > 0 {
		q = "query(" + strings.Join(decl, ", ") + ") " + q
	}
	var out struct{ Endpoints connection }
	c.Must(&out, q, vars)
	return out.Endpoints
}

func TestEndpoints_DefaultPageSizeIs20(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	createEndpoints(t, c, 25)

	p := endpointPage(t, c, "", nil)
	if len(p.Edges) != 20 || p.TotalCount != 25 || !p.PageInfo.HasNextPage || p.PageInfo.HasPreviousPage {
		t.Errorf("endpoints without first/last: %d edges, totalCount %d, pageInfo %+v; want 20 of 25 with a next page",
			len(p.Edges), p.TotalCount, p.PageInfo)
	}
	// Nested connections default to 20 too.
	rc := heraldtest.NewReceiver(t, nil)
	ep, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/all")})
	var in []map[string]any
	for range 25 {
		in = append(in, map[string]any{"eventType": "order.created", "payload": map[string]any{}})
	}
	c.Must(nil, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in})
	var out struct {
		Node struct{ Deliveries connection }
	}
	c.Must(&out, `query($id: ID!) { node(id: $id) { ... on Endpoint { deliveries { `+connectionFields+` } } } }`, map[string]any{"id": ep.ID})
	if d := out.Node.Deliveries; len(d.Edges) != 20 || d.TotalCount != 25 || !d.PageInfo.HasNextPage {
		t.Errorf("endpoint.deliveries without first/last: %d edges of %d, hasNextPage %v; want 20 of 25", len(d.Edges), d.TotalCount, d.PageInfo.HasNextPage)
	}
	var rest struct {
		Node struct{ Deliveries connection }
	}
	c.Must(&rest, `query($id: ID!, $after: Cursor) { node(id: $id) { ... on Endpoint { deliveries(after: $after) { `+connectionFields+` } } } }`,
		map[string]any{"id": ep.ID, "after": *out.Node.Deliveries.PageInfo.EndCursor})
	if d := rest.Node.Deliveries; len(d.Edges) != 5 || d.PageInfo.HasNextPage {
		t.Errorf("endpoint.deliveries after the first page: %d edges, hasNextPage %v; want the last 5", len(d.Edges), d.PageInfo.HasNextPage)
	}
	seen := append(out.Node.Deliveries.ids(), rest.Node.Deliveries.ids()...)
	if len(seen) != 25 || !sameSet(seen, slices.Compact(slices.Sorted(slices.Values(seen)))) {
		t.Errorf("the two pages of endpoint.deliveries overlap: %v", seen)
	}
	// A page size passed as a null or missing variable is the default too,
	// nested inside a list as well as at the top.
	var viaVar struct {
		Endpoints struct {
			Edges []struct {
				Node struct{ Deliveries connection }
			}
		}
	}
	c.Must(&viaVar, `query($n: Int) { endpoints(first: 100, where: {urlHasSuffix: "/all"}) { edges { node { deliveries(first: $n) { `+connectionFields+` } } } } }`,
		map[string]any{"n": nil})
	if e := viaVar.Endpoints.Edges; len(e) != 1 || len(e[0].Node.Deliveries.Edges) != 20 || !e[0].Node.Deliveries.PageInfo.HasNextPage {
		t.Errorf("deliveries(first: $n) with $n null: %+v; want 20 edges and a next page", e)
	}
}

func TestEndpoints_PagingVisitsEveryItemOnce(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	created := createEndpoints(t, c, 25)
	all := endpointPage(t, c, "first: 100", nil).ids()
	if !sameSet(all, created) {
		t.Fatalf("first: 100 lists %v, want %v", all, created)
	}

	for _, order := range []string{"", ", orderBy: {field: CREATED_AT, direction: DESC}", ", orderBy: {field: NAME}"} {
		full := endpointPage(t, c, "first: 100"+order, nil).ids()

		// Forward.
		var fwd []string
		vars := map[string]any{}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("order %q: paging forward does not end", order)
			}
			p := endpointPage(t, c, "first: 5, after: $after"+order, vars)
			if len(p.Edges) > 5 || p.TotalCount != 25 {
				t.Fatalf("order %q: page of %d edges, totalCount %d", order, len(p.Edges), p.TotalCount)
			}
			fwd = append(fwd, p.ids()...)
			if !p.PageInfo.HasNextPage {
				break
			}
			vars["after"] = *p.PageInfo.EndCursor
		}
		if !slices.Equal(fwd, full) {
			t.Errorf("order %q: paging forward by 5 visits\n%v\nwant\n%v", order, fwd, full)
		}

		// Backward.
		var back []string
		vars = map[string]any{}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("order %q: paging backward does not end", order)
			}
			p := endpointPage(t, c, "last: 5, before: $before"+order, vars)
			if len(p.Edges) > 5 {
				t.Fatalf("order %q: last: 5 returned %d edges", order, len(p.Edges))
			}
			back = append(p.ids(), back...)
			if !p.PageInfo.HasPreviousPage {
				break
			}
			vars["before"] = *p.PageInfo.StartCursor
		}
		if !slices.Equal(back, full) {
			t.Errorf("order %q: paging backward by 5 visits\n%v\nwant\n%v", order, back, full)
		}
	}
}

func TestEndpoints_OrderBy(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	createEndpoints(t, c, 12)

	var out struct {
		Endpoints struct {
			Edges []struct {
				Node struct {
					Name      string
					CreatedAt time.Time
				}
			}
		}
	}
	c.Must(&out, `{ endpoints(orderBy: {field: CREATED_AT, direction: DESC}) { edges { node { name createdAt } } } }`, nil)
	var times []time.Time
	for _, e := range out.Endpoints.Edges {
		times = append(times, e.Node.CreatedAt)
	}
	if len(times) != 12 || !sort.SliceIsSorted(times, func(i, j int) bool { return times[i].After(times[j]) }) {
		t.Errorf("CREATED_AT DESC gives %v", times)
	}
	c.Must(&out, `{ endpoints(orderBy: {field: NAME}) { edges { node { name createdAt } } } }`, nil)
	var names []string
	for _, e := range out.Endpoints.Edges {
		names = append(names, e.Node.Name)
	}
	if len(names) != 12 || !slices.IsSorted(names) {
		t.Errorf("NAME ASC gives %v", names)
	}
}

func TestConnections_RejectPageSizesOutOfRange(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	for _, conn := range []string{"endpoints", "events", "deliveries", "eventTypes", "apiKeys", "apps"} {
		for arg, field := range map[string]string{"first: 101": "first", "last: 101": "last", "first: -1": "first"} {
			r := c.Do(fmt.Sprintf(`{ %s(%s) { totalCount } }`, conn, arg), nil)
			r.WantFault(t, "BAD_USER_INPUT", field)
		}
		c.Must(nil, fmt.Sprintf(`{ %s(first: 100) { totalCount } }`, conn), nil)
		c.Must(nil, fmt.Sprintf(`{ %s(last: 100) { totalCount } }`, conn), nil)
	}
}

func TestConnections_RejectNestedPageSizeOverMax(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	ep, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/h", "isActive": false})
	publish(t, c, "order.created", map[string]any{})

	for _, q := range []string{
		`query($id: ID!) { node(id: $id) { ... on Endpoint { deliveries(first: 101) { totalCount } } } }`,
		`{ events { edges { node { deliveries(last: 101) { totalCount } } } } }`,
	} {
		c.Do(q, map[string]any{"id": ep.ID}).WantError(t, "BAD_USER_INPUT")
	}
}

// deliveryRow is a delivery as the filter test reads it.
type deliveryRow struct {
	ID, Status, EventType, EndpointID string
	CreatedAt                         time.Time
}

func listDeliveries(t *testing.T, c *heraldtest.Client, where map[string]any) []deliveryRow {
	t.Helper()
	var out struct {
		Deliveries struct {
			TotalCount int
			Edges      []struct{ Node deliveryRow }
		}
	}
	c.Must(&out, `query($w: DeliveryWhereInput) { deliveries(first: 100, where: $w, orderBy: {field: CREATED_AT}) {
		totalCount edges { node { id status eventType endpointID createdAt } } } }`, map[string]any{"w": where})
	rows := make([]deliveryRow, len(out.Deliveries.Edges))
	for i, e := range out.Deliveries.Edges {
		rows[i] = e.Node
	}
	if out.Deliveries.TotalCount != len(rows) {
		t.Fatalf("deliveries(where: %v): totalCount %d, %d edges", where, out.Deliveries.TotalCount, len(rows))
	}
	return rows
}

func TestDeliveries_FilterByStatusTypeEndpointAndTime(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	good := heraldtest.NewReceiver(t, nil)
	bad := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	okEP, _ := createEndpoint(t, c, map[string]any{"url": good.Hook("/ok"), "eventTypes": []string{"order.*"}})
	badEP, _ := createEndpoint(t, c, map[string]any{"url": bad.Hook("/bad"), "eventTypes": []string{"contact.*"}})

	// 30 events: 10 contact.created (FAILED at bad), 10 order.created and
	// 10 order.paid (SUCCEEDED at ok).
	types := []string{"contact.created", "order.created", "order.paid"}
	for i := range 30 {
		publish(t, c, types[i%3], map[string]any{"n": i})
	}
	waitDeliveries(t, c, 30)
	all := listDeliveries(t, c, nil)
	if len(all) != 30 {
		t.Fatalf("%d deliveries, want 30", len(all))
	}
	count := func(keep func(deliveryRow) bool) int {
		n := 0
		for _, d := range all {
			if keep(d) {
				n++
			}
		}
		return n
	}

	tests := []struct {
		name  string
		where map[string]any
		want  func(deliveryRow) bool
	}{
		{"status SUCCEEDED", map[string]any{"status": "SUCCEEDED"}, func(d deliveryRow) bool { return d.Status == "SUCCEEDED" }},
		{"status FAILED", map[string]any{"status": "FAILED"}, func(d deliveryRow) bool { return d.Status == "FAILED" }},
		{"statusIn", map[string]any{"statusIn": []string{"PENDING", "FAILED"}}, func(d deliveryRow) bool { return d.Status == "FAILED" }},
		{"eventType", map[string]any{"eventType": "order.paid"}, func(d deliveryRow) bool { return d.EventType == "order.paid" }},
		{"eventTypeHasPrefix", map[string]any{"eventTypeHasPrefix": "order."}, func(d deliveryRow) bool { return d.EventType != "contact.created" }},
		{"endpointID ok", map[string]any{"endpointID": okEP.ID}, func(d deliveryRow) bool { return d.EndpointID == okEP.ID }},
		{"endpointID bad", map[string]any{"endpointID": badEP.ID}, func(d deliveryRow) bool { return d.EndpointID == badEP.ID }},
		{"endpoint and type", map[string]any{"endpointID": okEP.ID, "eventType": "order.created"}, func(d deliveryRow) bool { return d.EventType == "order.created" }},
		{"or", map[string]any{"or": []map[string]any{{"eventType": "order.paid"}, {"status": "FAILED"}}}, func(d deliveryRow) bool { return d.EventType != "order.created" }},
		{"not", map[string]any{"not": map[string]any{"status": "SUCCEEDED"}}, func(d deliveryRow) bool { return d.Status != "SUCCEEDED" }},
	}
	for _, tt := range tests {
		got := listDeliveries(t, c, tt.where)
		if want := count(tt.want); len(got) != want {
			t.Errorf("%s: %d deliveries, want %d", tt.name, len(got), want)
		}
		for _, d := range got {
			if !tt.want(d) {
				t.Errorf("%s: unexpected %+v", tt.name, d)
			}
		}
	}
	if n := count(func(d deliveryRow) bool { return d.Status == "SUCCEEDED" }); n != 20 {
		t.Errorf("%d deliveries SUCCEEDED, want 20", n)
	}

	// Time ranges, with bounds written in other time zones.
	lo, hi := all[7].CreatedAt, all[23].CreatedAt
	between := func(d deliveryRow) bool { return !d.CreatedAt.Before(lo) && d.CreatedAt.Before(hi) }
	plus2, minus5 := time.FixedZone("", 2*3600), time.FixedZone("", -5*3600)
	for _, zone := range []*time.Location{time.UTC, plus2, minus5} {
		where := map[string]any{
			"createdAtGTE": lo.In(zone).Format(time.RFC3339Nano),
			"createdAtLT":  hi.In(zone).Format(time.RFC3339Nano),
		}
		got := listDeliveries(t, c, where)
		if want := count(between); len(got) != want || want < 10 {
			t.Errorf("createdAt in [%s, %s): %d deliveries, want %d", where["createdAtGTE"], where["createdAtLT"], len(got), want)
		}
		for _, d := range got {
			if !between(d) {
				t.Errorf("createdAt filter in zone %v returned %s created %s", zone, d.ID, d.CreatedAt)
			}
		}
		exact := listDeliveries(t, c, map[string]any{"createdAt": lo.In(zone).Format(time.RFC3339Nano)})
		if want := count(func(d deliveryRow) bool { return d.CreatedAt.Equal(lo) }); len(exact) != want {
			t.Errorf("createdAt = %s: %d deliveries, want %d", lo.In(zone).Format(time.RFC3339Nano), len(exact), want)
		}
	}
	// Whole-second bounds, as people type them, compare as instants too.
	sec := lo.Truncate(time.Second)
	got := listDeliveries(t, c, map[string]any{"createdAtGTE": sec.In(plus2).Format(time.RFC3339)})
	if want := count(func(d deliveryRow) bool { return !d.CreatedAt.Before(sec) }); len(got) != want {
		t.Errorf("createdAtGTE %s: %d deliveries, want %d", sec.In(plus2).Format(time.RFC3339), len(got), want)
	}
	got = listDeliveries(t, c, map[string]any{"createdAtLT": sec.Add(time.Second).In(minus5).Format(time.RFC3339)})
	if want := count(func(d deliveryRow) bool { return d.CreatedAt.Before(sec.Add(time.Second)) }); len(got) != want {
		t.Errorf("createdAtLT %s: %d deliveries, want %d", sec.Add(time.Second).In(minus5).Format(time.RFC3339), len(got), want)
	}
	c.Do(`{ deliveries(where: {createdAtGTE: "yesterday"}) { totalCount } }`, nil).WantError(t, "BAD_USER_INPUT")
}

func TestEvents_PageAndFilterByTime(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	for i := range 30 {
		publish(t, c, []string{"order.created", "contact.created"}[i%2], map[string]any{"n": i})
	}

	var out struct {
		Events struct {
			TotalCount int
			PageInfo   struct{ HasNextPage bool }
			Edges      []struct {
				Node struct {
					ID        string
					EventType string
					CreatedAt time.Time
				}
			}
		}
	}
	c.Must(&out, `{ events { totalCount pageInfo { hasNextPage } edges { node { id eventType createdAt } } } }`, nil)
	if out.Events.TotalCount != 30 || len(out.Events.Edges) != 20 || !out.Events.PageInfo.HasNextPage {
		t.Errorf("events: totalCount %d, %d edges, hasNextPage %v; want 20 of 30", out.Events.TotalCount, len(out.Events.Edges), out.Events.PageInfo.HasNextPage)
	}
	c.Must(&out, `{ events(first: 100, orderBy: {field: CREATED_AT, direction: DESC}) { totalCount edges { node { id eventType createdAt } } } }`, nil)
	es := slices.Clone(out.Events.Edges)
	if len(es) != 30 || !sort.SliceIsSorted(es, func(i, j int) bool { return es[i].Node.CreatedAt.After(es[j].Node.CreatedAt) }) {
		t.Fatalf("events by CREATED_AT DESC are not in order")
	}
	cut := es[9].Node.CreatedAt // the 10 newest are at or after it
	c.Must(&out, `query($t: Time!) { events(first: 100, where: {createdAtGTE: $t, eventType: "order.created"}) { totalCount edges { node { id eventType createdAt } } } }`,
		map[string]any{"t": cut.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)})
	want := 0
	for _, e := range es[:10] {
		if e.Node.EventType == "order.created" {
			want++
		}
	}
	if out.Events.TotalCount != want {
		t.Errorf("order.created events since %s: %d, want %d", cut, out.Events.TotalCount, want)
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
