package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
)

// On SQLite every app's publishes share one writer, and a transaction that
// stores a thousand deliveries holds it for 10 to 50 ms on two busy cores,
// one of the 10,000 a call may create for hundreds: another app's publish,
// arriving meanwhile, waited that long. So a publish stores at most
// partRows deliveries in its own transaction; the rest of its fan-out is
// written there too, compactly, as parts (table fanouts, one row of at most
// partRows deliveries each, which costs a few pages and no index entries),
// and the publisher stores the parts as deliveries between its groups: one
// part per transaction while other apps publish, several together (up to
// maxGroupRows deliveries) when no other app has published for
// partsAloneAfter, as with a single app.
// Everything a publish fans out to is durable once its first transaction
// commits, and a part a crash leaves in the table is stored as deliveries
// when the engine starts again.
//
// The publish is answered once its last part is stored, so that the app's
// one heavy turn (server) covers the commits of its fan-out too, and until
// then the app's next publishes wait, so that an endpoint still receives an
// app's events in the order they were published. Next to an app calling
// with 10,000 deliveries at a time, another app's publish → arrival p99
// went from 181-268 ms to 60-63 ms (TestNoisyNeighbour on SQLite).
//
// PostgreSQL takes concurrent writers, and commits large publishes on a lane
// of their own instead (see laneRows).
const partRows = 128

// partsAloneAfter is how long the publisher must have stored no publish of
// an app without queued parts before it stores several parts in one
// transaction. Waiting for no publish to be queued at that instant was not
// enough: another app's next publish arrived during the transaction, and
// waited for all of it (896 deliveries, 11 ms at the median and 40 at the
// p99 on two busy cores). One part per transaction while any other app is
// active took that app's publish → arrival median from 6-7.6 ms to 2.5-3.9
// next to TestNoisyNeighbour's noisy app; alone, several together save the
// commits (one part per transaction cost the wide benchmark 4%).
const partsAloneAfter = time.Second

// partTx is implemented by transactions whose driver stores fan-outs in
// parts (SQLiteDriver's).
type partTx interface {
	// InsertParts stores parts of fan-outs.
	InsertParts(ctx context.Context, parts []StoredPart) error
	// DeletePart removes a part whose deliveries the transaction stored.
	DeletePart(ctx context.Context, id string) error
}

// partStore is implemented by drivers whose publishes store fan-outs in
// parts (SQLiteDriver).
type partStore interface {
	// Parts returns the stored parts, in the order of their IDs.
	Parts(ctx context.Context) ([]StoredPart, error)
}

// StoredPart is a part of a fan-out as a driver stores it: the deliveries
// are encoded by the engine.
type StoredPart struct {
	ID         string
	AppID      string
	Deliveries []byte
	CreatedAt  time.Time
}

// fanoutPart is a part of a publish's fan-out waiting to be stored as
// deliveries.
type fanoutPart struct {
	id, app string
	// rows are the deliveries of a part read back from the store, which
	// claims take; a publish's part builds them when stored, from refs
	// [from, from+n) of later.
	rows    []DeliveryRow
	later   *laterFanout
	from, n int
	// reply, if not nil, is the channel on which the publish that stored
	// the part, its last, is answered once it is stored.
	reply  chan publishReply
	answer publishReply
	// retryAt is when a part whose transaction failed is tried again.
	retryAt time.Time
	fails   int
}

// size is how many deliveries the part holds.
func (p *fanoutPart) size() int {
	if p.later != nil {
		return p.n
	}
	return len(p.rows)
}

// deliveries returns the part's deliveries, whether each may be handed to
// the scheduler (its endpoint's flow is not controlled), and the messages
// of their events; the last two are nil for a part read back from the
// store, whose deliveries claims take.
func (p *fanoutPart) deliveries() ([]DeliveryRow, []bool, map[string]*partEvent) {
	if p.later == nil {
		return p.rows, nil, nil
	}
	rows, handOff := p.later.build(p.from, p.n, make([]DeliveryRow, 0, p.n), make([]bool, 0, p.n))
	events := make(map[string]*partEvent)
	for k, r := range p.later.refs[p.from : p.from+p.n] {
		if handOff[k] && events[rows[k].EventID] == nil {
			events[rows[k].EventID] = p.later.event(int(r.ev))
		}
	}
	return rows, handOff, events
}

// partEvent is what a part's jobs need of their event.
type partEvent struct {
	msg                      *message
	orderingKey, traceParent string
	createdAt                time.Time
}

// laterFanout is what a publish fans out to beyond the deliveries its
// first transaction stores: references to its matches, each with the
// place of its delivery's ID in the publish's sequence, which a copy of
// the sequence makes again.
// Its parts are encoded from it in that transaction, and their deliveries
// built from it only as each part is stored: a call of 10,000 deliveries
// built all of them in the transaction another app's publish may wait for
// (1.7 MB, 1 to 13 ms next to TestNoisyNeighbour's noisy app).
type laterFanout struct {
	req     *publishReq
	events  []*EventRow
	matches [][]match
	refs    []laterRef
	// seq makes refs[0]'s delivery ID.
	seq ids.Sequence
	now time.Time
	// msgs are the messages of the events, made as parts need them.
	msgs []*partEvent
}

// laterRef is a delivery of a laterFanout: matches[ev][m], whose ID is
// the idx-th the fan-out's sequence makes.
type laterRef struct{ ev, m, idx int32 }

// newLaterFanout starts the fan-out a request leaves for parts, at the
// delivery seq makes next; room is how many of its deliveries the first
// transaction stores.
func newLaterFanout(req *publishReq, events []*EventRow, matches [][]match, seq ids.Sequence, now time.Time, room int) *laterFanout {
	n := 0
	for _, m := range matches {
		n += len(m)
	}
	return &laterFanout{req: req, events: events, matches: matches, refs: make([]laterRef, 0, max(n-room, 1)), seq: seq, now: now}
}

// add adds matches[ev][m] to the fan-out, with the next ID.
func (f *laterFanout) add(ev, m int) {
	f.refs = append(f.refs, laterRef{ev: int32(ev), m: int32(m), idx: int32(len(f.refs))})
}

// arrange orders the deliveries of a fan-out of several events so that
// each part holds few endpoints: by endpoint, and within a part in the
// order of their IDs. Deliveries are added event after event, each to
// every endpoint; a part of those touched the index pages of 128
// endpoints, and one of a call of ten events to a thousand endpoints
// touches those of 13. An endpoint's deliveries stay in the order of
// their events: within a part, and from one part to the next, which are
// stored in turn.
func (f *laterFanout) arrange(endpoints int) {
	if len(f.refs) == 0 || f.refs[0].ev == f.refs[len(f.refs)-1].ev {
		return // one event: already by endpoint
	}
	// A counting sort by subscriber, stable: events in order within each.
	start := make([]int, endpoints+1)
	for _, r := range f.refs {
		start[f.matches[r.ev][r.m].k+1]++
	}
	for k := 1; k <= endpoints; k++ {
		start[k] += start[k-1]
	}
	sorted := make([]laterRef, len(f.refs))
	for _, r := range f.refs {
		k := f.matches[r.ev][r.m].k
		sorted[start[k]] = r
		start[k]++
	}
	for from := 0; from < len(sorted); from += partRows {
		part := sorted[from:min(from+partRows, len(sorted))]
		slices.SortFunc(part, func(a, b laterRef) int { return int(a.idx - b.idx) })
	}
	f.refs = sorted
}

// build appends the deliveries of refs [from, from+n) to rows, and whether
// each may be handed off to handOff. Their IDs share one string.
func (f *laterFanout) build(from, n int, rows []DeliveryRow, handOff []bool) ([]DeliveryRow, []bool) {
	idLen := len(ids.Delivery) + 1 + 26
	buf := make([]byte, 0, n*idLen)
	for _, r := range f.refs[from : from+n] {
		seq := f.seq
		seq.Skip(int(r.idx))
		buf = seq.AppendNext(buf, ids.Delivery)
	}
	all := string(buf)
	subs := f.req.snap.subs
	for i, r := range f.refs[from : from+n] {
		row := f.row(r, all[i*idLen:(i+1)*idLen])
		rows = append(rows, row)
		handOff = append(handOff, row.Failed == "" && f.events[r.ev].DeliverAt == nil && !subs[f.matches[r.ev][r.m].k].Controlled)
	}
	return rows, handOff
}

// row returns the delivery of r, with the given ID.
func (f *laterFanout) row(r laterRef, id string) DeliveryRow {
	m := f.matches[r.ev][r.m]
	return newDeliveryRow(f.req.appID, f.events[r.ev], f.req.inputs[r.ev], f.req.snap.subs[m.k], m, id, f.now)
}

// event returns what the jobs of event i need, made once.
func (f *laterFanout) event(i int) *partEvent {
	if f.msgs == nil {
		f.msgs = make([]*partEvent, len(f.events))
	}
	if f.msgs[i] == nil {
		ev, in := f.events[i], f.req.inputs[i]
		f.msgs[i] = &partEvent{msg: newMessage(ev, in, f.now), orderingKey: in.OrderingKey, traceParent: f.req.traceParent, createdAt: f.now}
	}
	return f.msgs[i]
}

// A part is stored as JSON: its deliveries in runs, each run the
// consecutive deliveries that share their event, type, times, ordering key
// and failure, with those written once, and then the place of each
// delivery's ID in the publish's sequence, after the fan-out's first ID,
// and its endpoint's ID:
//
//	{"v":3,"s":"dlv_…","runs":[{"e":"evt_…","t":"order.created","c":"2026-12-07T10:20:05Z","i":[0,1],"p":["ep_…","ep_…"]}]}
//
// A part of a call of ten events to a thousand endpoints holds a run or
// two per event, about 40 bytes a delivery, and is written from the
// fan-out's references without making its deliveries or their IDs: that
// happens in the transaction another app's publish may wait for. Parts of
// the earlier versions are still read, so that parts an earlier Herald
// left are stored after an upgrade: the first (an array of storedRow,
// about 170 bytes a delivery and 300 with a failure's reason), and the
// second (runs whose "r" holds each delivery's ID and endpoint's ID).

// storedPart is a part as stored.
type storedPart struct {
	Version int `json:"v"`
	// Start is the ID of the fan-out's first delivery (version 3).
	Start string      `json:"s,omitempty"`
	Runs  []storedRun `json:"runs"`
}

// storedRun is a run of a part's deliveries: Places and Endpoints hold
// each delivery's place in the sequence after the part's Start and its
// endpoint's ID (version 3); Rows, in version 2, its ID and then its
// endpoint's ID.
type storedRun struct {
	EventID     string    `json:"e"`
	EventType   string    `json:"t"`
	CreatedAt   time.Time `json:"c"`
	DueAt       time.Time `json:"d,omitzero"`
	OrderingKey *string   `json:"o,omitempty"`
	Failed      string    `json:"f,omitempty"`
	Places      []uint32  `json:"i,omitempty"`
	Endpoints   []string  `json:"p,omitempty"`
	Rows        []string  `json:"r,omitempty"`
}

// storedRow is a delivery of a part as the first version stored it.
type storedRow struct {
	ID          string    `json:"i"`
	EventID     string    `json:"e"`
	EndpointID  string    `json:"p"`
	EventType   string    `json:"t"`
	CreatedAt   time.Time `json:"c"`
	DueAt       time.Time `json:"d,omitzero"`
	OrderingKey *string   `json:"o,omitempty"`
	Failed      string    `json:"f,omitempty"`
}

// splitParts cuts a publish's later fan-out into parts of at most
// partRows deliveries, encoded to be stored. They are encoded into one
// buffer, as encoding/json would encode their storedPart but without
// reflection, and with what a run shares written once: the parts of a call
// of 10,000 deliveries are written in the transaction another app's
// publish may wait for. Next to TestNoisyNeighbour's noisy app, encoding
// such a call's parts one storedRow a delivery took 4 to 30 ms of that
// transaction, and they were 3 MB.
func splitParts(f *laterFanout) ([]*fanoutPart, []StoredPart, error) {
	var parts []*fanoutPart
	var ends []int
	buf := make([]byte, 0, len(f.refs)*storedRowBytes+1024)
	var enc partEncoder
	first := f.seq
	name := first.Next(ids.Delivery)
	for start := 0; start < len(f.refs); start += partRows {
		n := min(partRows, len(f.refs)-start)
		var err error
		if buf, err = enc.appendPart(buf, f, start, n, name); err != nil {
			return nil, nil, fmt.Errorf("encode fan-out part: %w", err)
		}
		// Named so that the parts sort in the order they are stored in,
		// when read back after a restart: their deliveries' IDs do not.
		id := fmt.Sprintf("%s.%05d", name, len(parts))
		parts = append(parts, &fanoutPart{id: id, app: f.req.appID, later: f, from: start, n: n})
		ends = append(ends, len(buf))
	}
	stored := make([]StoredPart, len(parts))
	from := 0
	for i, p := range parts {
		stored[i] = StoredPart{ID: p.id, AppID: p.app, Deliveries: buf[from:ends[i]:ends[i]], CreatedAt: f.now}
		from = ends[i]
	}
	return parts, stored, nil
}

// storedRowBytes is a little more than what a delivery adds to its part:
// its place, its endpoint's ID, quoted, two commas, and a share of its
// run's event, type, time and failure (68 bytes in a call of ten events
// to a thousand endpoints whose filters fail, about 40 without failures).
const storedRowBytes = 75

// partEncoder encodes parts, remembering the last time, event type and
// failure it encoded: they recur from one run to the next.
type partEncoder struct {
	at           time.Time
	atJSON       []byte
	typ, failure quoted
	endpoints    []byte // the run's endpoint IDs, written after its places
}

// quoted is a string and its JSON.
type quoted struct {
	raw  string
	json []byte
}

// append appends s as a JSON string, quoting it only if it is not the
// string q last quoted: a failure's reason needs escaping, and recurs in
// every run of a fan-out its filters cut short.
func (q *quoted) append(dst []byte, s string) ([]byte, error) {
	if q.json == nil || s != q.raw {
		b, err := appendString(q.json[:0], s)
		if err != nil {
			return nil, err
		}
		q.raw, q.json = s, b
	}
	return append(dst, q.json...), nil
}

// sameRun reports whether a and b belong to one run.
func sameRun(a, b *DeliveryRow) bool {
	return a.EventID == b.EventID && a.EventType == b.EventType && a.Failed == b.Failed &&
		a.CreatedAt.Equal(b.CreatedAt) && a.CreatedAt.Location() == b.CreatedAt.Location() &&
		a.DueAt.Equal(b.DueAt) && a.DueAt.Location() == b.DueAt.Location() &&
		(a.OrderingKey == nil) == (b.OrderingKey == nil) && (a.OrderingKey == nil || *a.OrderingKey == *b.OrderingKey)
}

// appendPart appends the JSON of the storedPart of f's references
// [from, from+n), whose places count from start, the ID of f's first
// delivery. It makes no delivery ID: those are the sequence's, from the
// places.
func (e *partEncoder) appendPart(dst []byte, f *laterFanout, from, n int, start string) ([]byte, error) {
	var err error
	dst = append(dst, `{"v":3,"s":`...)
	if dst, err = appendString(dst, start); err != nil {
		return nil, err
	}
	dst = append(dst, `,"runs":[`...)
	var run DeliveryRow
	for i, r := range f.refs[from : from+n] {
		row := f.row(r, "")
		if i == 0 || !sameRun(&run, &row) {
			if i > 0 {
				dst = append(e.closeRun(dst), ',')
			}
			run = row
			if dst, err = e.openRun(dst, &row); err != nil {
				return nil, err
			}
		} else {
			dst = append(dst, ',')
			e.endpoints = append(e.endpoints, ',')
		}
		dst = strconv.AppendUint(dst, uint64(r.idx), 10)
		if e.endpoints, err = appendString(e.endpoints, row.EndpointID); err != nil {
			return nil, err
		}
	}
	if n > 0 {
		dst = e.closeRun(dst)
	}
	return append(dst, "]}"...), nil
}

// openRun appends what the run starting at r shares, up to its places.
func (e *partEncoder) openRun(dst []byte, r *DeliveryRow) ([]byte, error) {
	var err error
	dst = append(dst, `{"e":`...)
	if dst, err = appendString(dst, r.EventID); err != nil {
		return nil, err
	}
	dst = append(dst, `,"t":`...)
	if dst, err = e.typ.append(dst, r.EventType); err != nil {
		return nil, err
	}
	dst = append(dst, `,"c":`...)
	if dst, err = e.appendTime(dst, r.CreatedAt); err != nil {
		return nil, err
	}
	if !r.DueAt.IsZero() {
		dst = append(dst, `,"d":`...)
		if dst, err = e.appendTime(dst, r.DueAt); err != nil {
			return nil, err
		}
	}
	if r.OrderingKey != nil {
		dst = append(dst, `,"o":`...)
		if dst, err = appendString(dst, *r.OrderingKey); err != nil {
			return nil, err
		}
	}
	if r.Failed != "" {
		dst = append(dst, `,"f":`...)
		if dst, err = e.failure.append(dst, r.Failed); err != nil {
			return nil, err
		}
	}
	e.endpoints = e.endpoints[:0]
	return append(dst, `,"i":[`...), nil
}

// closeRun appends the run's endpoint IDs and ends it.
func (e *partEncoder) closeRun(dst []byte) []byte {
	dst = append(dst, `],"p":[`...)
	dst = append(dst, e.endpoints...)
	return append(dst, "]}"...)
}

// appendString appends s as a JSON string: as it is between quotes when
// it needs no escaping, as IDs and event types never do.
func appendString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return jsontext.AppendQuote(dst, s)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}

// appendTime appends t as encoding/json encodes a time.Time.
func (e *partEncoder) appendTime(dst []byte, t time.Time) ([]byte, error) {
	if e.atJSON == nil || !t.Equal(e.at) || t.Location() != e.at.Location() {
		b, err := t.MarshalJSON()
		if err != nil {
			return nil, err
		}
		e.at, e.atJSON = t, b
	}
	return append(dst, e.atJSON...), nil
}

// decodePart returns a stored part, whose deliveries claims will take. It
// reads both versions of the encoding.
func decodePart(s StoredPart) (*fanoutPart, error) {
	if b := bytes.TrimLeft(s.Deliveries, " \t\r\n"); len(b) > 0 && b[0] == '[' {
		return decodePartV1(s)
	}
	var enc storedPart
	if err := json.Unmarshal(s.Deliveries, &enc); err != nil {
		return nil, fmt.Errorf("decode fan-out part %s: %w", s.ID, err)
	}
	if enc.Version != 2 && enc.Version != 3 {
		return nil, fmt.Errorf("decode fan-out part %s: version %d is not one this Herald reads", s.ID, enc.Version)
	}
	n := 0
	for _, run := range enc.Runs {
		size, err := run.size(enc.Version)
		if err != nil {
			return nil, fmt.Errorf("decode fan-out part %s: %w", s.ID, err)
		}
		n += size
	}
	p := &fanoutPart{id: s.ID, app: s.AppID, rows: make([]DeliveryRow, 0, n)}
	for _, run := range enc.Runs {
		size, _ := run.size(enc.Version)
		for j := range size {
			// Version 2 holds each delivery's ID and endpoint's in turn;
			// version 3 each delivery's place after the part's Start.
			id, endpoint := "", ""
			if enc.Version == 2 {
				id, endpoint = run.Rows[2*j], run.Rows[2*j+1]
			} else {
				var ok bool
				if id, ok = ids.Add(enc.Start, uint64(run.Places[j])); !ok {
					return nil, fmt.Errorf("decode fan-out part %s: its first delivery ID %q is not an ID", s.ID, enc.Start)
				}
				endpoint = run.Endpoints[j]
			}
			p.rows = append(p.rows, DeliveryRow{ID: id, AppID: s.AppID, EventID: run.EventID, EndpointID: endpoint,
				EventType: run.EventType, CreatedAt: run.CreatedAt, DueAt: run.DueAt, OrderingKey: run.OrderingKey, Failed: run.Failed})
		}
	}
	return p, nil
}

// size returns how many deliveries the run holds in the given version of
// the encoding, or why its lists do not agree.
func (run *storedRun) size(version int) (int, error) {
	if version == 2 {
		if len(run.Rows)%2 != 0 {
			return 0, fmt.Errorf("a run of event %s holds an odd number of IDs", run.EventID)
		}
		return len(run.Rows) / 2, nil
	}
	if len(run.Places) != len(run.Endpoints) {
		return 0, fmt.Errorf("a run of event %s holds %d places for %d endpoints", run.EventID, len(run.Places), len(run.Endpoints))
	}
	return len(run.Places), nil
}

// decodePartV1 reads a part in the first version of the encoding.
func decodePartV1(s StoredPart) (*fanoutPart, error) {
	var enc []storedRow
	if err := json.Unmarshal(s.Deliveries, &enc); err != nil {
		return nil, fmt.Errorf("decode fan-out part %s: %w", s.ID, err)
	}
	p := &fanoutPart{id: s.ID, app: s.AppID, rows: make([]DeliveryRow, len(enc))}
	for i, r := range enc {
		p.rows[i] = DeliveryRow{ID: r.ID, AppID: s.AppID, EventID: r.EventID, EndpointID: r.EndpointID, EventType: r.EventType,
			CreatedAt: r.CreatedAt, DueAt: r.DueAt, OrderingKey: r.OrderingKey, Failed: r.Failed}
	}
	return p, nil
}

// parts is the publisher's queue of fan-out parts, in the order they are
// stored, with how many each app has queued.
type parts struct {
	queue []*fanoutPart
	byApp map[string]int
	// loaded reports that the parts a previous run left were read; until
	// then, they are read again from loadAt.
	loaded bool
	loadAt time.Time
	// active holds when the publisher last stored a publish of each app
	// that had no parts queued then, for apps seen within partsAloneAfter
	// (older ones are pruned as it grows).
	active map[string]time.Time
}

// stored notes the publishes the publisher stored at now: those of apps
// with no parts queued show other apps at work.
func (q *parts) stored(batch []*publishReq, now time.Time) {
	for _, r := range batch {
		if q.waiting(r.appID) {
			continue
		}
		if q.active == nil {
			q.active = make(map[string]time.Time)
		}
		if _, ok := q.active[r.appID]; !ok && len(q.active) >= 64 {
			maps.DeleteFunc(q.active, func(_ string, at time.Time) bool { return now.Sub(at) > partsAloneAfter })
		}
		q.active[r.appID] = now
	}
}

// othersActive reports whether an app with no parts queued had a publish
// stored within partsAloneAfter of now.
func (q *parts) othersActive(now time.Time) bool {
	for app, at := range q.active {
		if now.Sub(at) <= partsAloneAfter && !q.waiting(app) {
			return true
		}
	}
	return false
}

func (q *parts) push(ps ...*fanoutPart) {
	if q.byApp == nil {
		q.byApp = make(map[string]int)
	}
	for _, p := range ps {
		q.queue = append(q.queue, p)
		q.byApp[p.app]++
	}
}

// ready reports whether the publisher has work now: a publish of pending
// whose app has no parts queued, or a part that is due.
func (q *parts) ready(pending []*publishReq) bool {
	return q.wait(time.Now()) == 0 || q.anyFree(pending)
}

// anyFree reports whether a publish of pending is free to be stored: its
// app has no parts queued.
func (q *parts) anyFree(pending []*publishReq) bool {
	for _, r := range pending {
		if !q.waiting(r.appID) {
			return true
		}
	}
	return false
}

// waiting reports whether app has parts queued: its publishes wait.
func (q *parts) waiting(app string) bool { return q.byApp[app] > 0 }

// next returns the first part that may be tried now, if any.
func (q *parts) next(now time.Time) *fanoutPart {
	for _, p := range q.queue {
		if !now.Before(p.retryAt) {
			return p
		}
	}
	return nil
}

func (q *parts) remove(p *fanoutPart) {
	q.queue = slices.DeleteFunc(q.queue, func(x *fanoutPart) bool { return x == p })
	if q.byApp[p.app]--; q.byApp[p.app] <= 0 {
		delete(q.byApp, p.app)
	}
}

// loadParts queues the parts a previous run left in the store, once.
func (e *Engine) loadParts(q *parts) {
	ps, ok := e.cfg.Driver.(partStore)
	if !ok || e.shared {
		q.loaded = true
		return
	}
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), time.Minute)
	defer cancel()
	stored, err := ps.Parts(ctx)
	if err != nil {
		q.loadAt = time.Now().Add(5 * time.Second)
		e.log.Error("read the fan-out parts left by the last run; trying again", "retry_in", 5*time.Second, "err", err)
		return
	}
	q.loaded = true
	for _, s := range stored {
		p, err := decodePart(s)
		if err != nil {
			// Not expected: this engine wrote it. Left in the store for
			// an operator to look at.
			e.log.Error("a fan-out part left by the last run cannot be read; its deliveries are not stored", "part", s.ID, "app_id", s.AppID, "err", err)
			continue
		}
		q.push(p)
	}
	if len(stored) > 0 {
		e.log.Info("storing the deliveries of fan-outs the last run left unfinished", "parts", len(stored))
	}
}

// storeParts stores the deliveries of parts and removes the parts from the
// store in one transaction, then hands the deliveries off like a
// publish's, and answers the publishes whose last part it stored.
func (e *Engine) storeParts(ps []*fanoutPart) error {
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), time.Minute)
	defer cancel()
	now := e.cfg.Now().UTC()
	lease := &Lease{Token: e.worker, Until: now.Add(e.cfg.Lease)}
	outs := make([]*publishOutput, len(ps))
	var leased, dueNow, later []DeliveryRow
	for k, p := range ps {
		out := &publishOutput{app: p.app}
		outs[k] = out
		rows, handOff, events := p.deliveries()
		for i, r := range rows {
			out.created = append(out.created, createdChange(r, now))
			switch {
			case r.Failed != "" || !r.DueAt.IsZero():
				later = append(later, r)
				continue
			case handOff != nil && handOff[i]:
				ev := events[r.EventID]
				if cfg := e.handOffConfig(out, r.EndpointID, false); cfg != nil {
					leased = append(leased, r)
					out.jobs = append(out.jobs, newJob(lease, r, cfg, ev.msg, ev.orderingKey, ev.traceParent, ev.createdAt))
					continue
				}
			}
			out.unleased = appendNew(out.unleased, r.EndpointID)
			dueNow = append(dueNow, r)
			out.held = append(out.held, Lease{DeliveryID: r.ID, EndpointID: r.EndpointID, Token: lease.Token, Until: lease.Until})
		}
	}
	err := func() error {
		tx, err := e.cfg.Driver.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after commit
		for _, part := range []struct {
			rows  []DeliveryRow
			lease *Lease
		}{{leased, lease}, {dueNow, lease}, {later, nil}} {
			if len(part.rows) == 0 {
				continue
			}
			if err := tx.InsertDeliveries(ctx, part.rows, part.lease); err != nil {
				return err
			}
		}
		pt, ok := tx.(partTx)
		if !ok {
			return fmt.Errorf("the driver stores no fan-out parts")
		}
		for _, p := range ps {
			if err := pt.DeletePart(ctx, p.id); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		for _, out := range outs {
			out.unreserve(e.window)
		}
		return fmt.Errorf("store %d fan-out parts from %s: %w", len(ps), ps[0].id, err)
	}
	for k, out := range outs {
		e.announce(out)
		if p := ps[k]; p.reply != nil {
			p.reply <- p.answer
			p.reply = nil
		}
	}
	for _, out := range outs {
		e.afterPublish(out)
	}
	return nil
}

// answerAll answers the publishes whose parts are queued: when the engine
// closes with parts it could not store, those are stored at the next
// start, and the publishes are accepted all the same.
func (q *parts) answerAll() {
	for _, p := range q.queue {
		if p.reply != nil {
			p.reply <- p.answer
			p.reply = nil
		}
	}
}

// runParts stores the next part that is due, if any, or, when alone (no
// other app's publish waits for the writer or was stored lately), up to
// maxGroupRows of deliveries in the parts that are due, and schedules
// failed ones for another try. It reports whether it stored any.
func (e *Engine) runParts(q *parts, alone bool) bool {
	if !q.loaded {
		if time.Now().Before(q.loadAt) {
			return false
		}
		e.loadParts(q)
	}
	if len(q.queue) == 0 {
		return false
	}
	now := time.Now()
	var ps []*fanoutPart
	rows := 0
	for _, p := range q.queue {
		if now.Before(p.retryAt) {
			continue
		}
		if len(ps) > 0 && (!alone || rows+p.size() > maxGroupRows) {
			break
		}
		ps, rows = append(ps, p), rows+p.size()
	}
	if len(ps) == 0 {
		return false
	}
	if err := e.storeParts(ps); err != nil {
		for _, p := range ps {
			p.fails++
			p.retryAt = time.Now().Add(min(minRecordBackoff<<min(p.fails, 10), maxRecordBackoff))
		}
		e.log.Error("fan-out parts not stored; their apps' publishes wait for them", "parts", len(ps), "retry_in", time.Until(ps[0].retryAt).Round(time.Millisecond), "err", err)
		return false
	}
	for _, p := range ps {
		q.remove(p)
	}
	return true
}

// wait returns how long the publisher may wait for a publish before a
// queued part, or reading the parts left by the last run, is due (-1: it
// need not wake for parts).
func (q *parts) wait(now time.Time) time.Duration {
	if !q.loaded {
		return max(q.loadAt.Sub(now), 0)
	}
	d := time.Duration(-1)
	for _, p := range q.queue {
		w := max(p.retryAt.Sub(now), 0)
		if d < 0 || w < d {
			d = w
		}
	}
	return d
}
