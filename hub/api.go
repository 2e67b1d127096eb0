package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchboard-io/switchboard"
)

func (h *Hub) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", h.srv)
	js := newAsset(h.cfg.ClientJS, "text/javascript; charset=utf-8")
	mux.Handle("/socket.io/socket.io.js", js)
	mux.Handle("/socket.io/socket.io.min.js", js)
	mux.Handle("/switchboard.js", js)
	mux.HandleFunc("/healthz", h.healthz)
	mux.HandleFunc("/readyz", h.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(h.metrics.reg, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.Handle("/api/", http.HandlerFunc(h.api))
	mux.Handle("/", http.FileServerFS(h.cfg.Demo))
	return mux
}

// asset is an embedded file served with an ETag.
type asset struct {
	body        []byte
	etag        string
	contentType string
}

func newAsset(body []byte, contentType string) *asset {
	sum := sha256.Sum256(body)
	return &asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: contentType}
}

func (a *asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, CodeMethod, "use GET")
		return
	}
	hd := w.Header()
	hd.Set("ETag", a.etag)
	// Revalidate every time: the URL is not versioned, and a 304 is cheap.
	hd.Set("Cache-Control", "public, max-age=0, must-revalidate")
	if etagMatch(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", a.contentType)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// etagMatch implements If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, answer{"ok": false, "error": code, "message": msg})
}

func (h *Hub) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": h.cfg.Version})
}

func (h *Hub) readyz(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return
	}
	if h.store != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		_, _, err := h.store.Info(ctx, "/#\x00readyz")
		cancel()
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": "store: " + err.Error()})
			return
		}
	}
	if h.cluster != nil {
		if err := h.cluster.Err(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": "redis: " + err.Error()})
			return
		}
	}
	if h.cfg.Ready != nil {
		if err := h.cfg.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

// api serves /api/: authentication, then one handler per endpoint.
func (h *Hub) api(w http.ResponseWriter, r *http.Request) {
	if !h.apiAuthorized(w, r) {
		return
	}
	path := r.URL.Path
	var method string
	var fn func(http.ResponseWriter, *http.Request)
	switch {
	case path == "/api/publish":
		method, fn = http.MethodPost, h.apiPublish
	case path == "/api/disconnect":
		method, fn = http.MethodPost, h.apiDisconnect
	case path == "/api/rooms" || path == "/api/rooms/":
		method, fn = http.MethodGet, h.apiRooms
	case strings.HasPrefix(path, "/api/rooms/"):
		method, fn = http.MethodGet, h.apiRoom
	default:
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+path)
		return
	}
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, CodeMethod, "use "+method)
		return
	}
	fn(w, r)
}

func (h *Hub) apiAuthorized(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.APIKey == "" {
		if h.DevMode() {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, "the HTTP API is disabled: no API key is configured (--api-key)")
		return false
	}
	got := bearer(r.Header.Get("Authorization"))
	if subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.APIKey)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong API key (Authorization: Bearer <key>)")
		return false
	}
	return true
}

// decodeBody reads a JSON object body into v, answering the error itself.
func (h *Hub) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is larger than "+itoa(h.cfg.MaxBodyBytes)+" bytes")
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, CodeBadRequest, "empty body: expected a JSON object")
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "invalid JSON: "+err.Error())
	}
	return false
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func statusOf(a answer) int {
	switch a["error"] {
	case nil:
		return http.StatusOK
	case CodeInternal:
		return http.StatusInternalServerError
	case CodeForbidden:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

func (h *Hub) apiPublish(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var body struct {
		Room  *string         `json:"room"`
		Event *string         `json:"event"`
		Data  json.RawMessage `json:"data"`
		ID    *string         `json:"id"`
	}
	if !h.decodeBody(w, r, &body) {
		h.countPublish("http", start, false, fail(CodeBadRequest, ""))
		return
	}
	var a answer
	switch {
	case body.Room == nil:
		a = fail(CodeBadRequest, "room is required")
	case body.Event == nil:
		a = fail(CodeInvalidEvent, "event is required")
	default:
		a = h.checkRoom(*body.Room)
	}
	durable := false
	if a == nil {
		durable = h.IsDurable(*body.Room)
		a = h.doPublish(nil, "", publishRequest{Room: *body.Room, Event: *body.Event, Data: rawOrNull(body.Data), ID: body.ID})
	}
	h.countPublish("http", start, durable, a)
	writeJSON(w, statusOf(a), a)
}

// RoomInfo describes a room in the HTTP API.
type RoomInfo struct {
	Name       string   `json:"name"`
	Members    int      `json:"members"` // connections in the room
	Durable    bool     `json:"durable"`
	LastOffset uint64   `json:"lastOffset"` // 0 when the room has no log
	Identities []string `json:"identities,omitempty"`
}

// clustered reports whether the namespace's adapter spans several nodes.
func (h *Hub) clustered() bool {
	_, local := h.ns.Adapter().(*switchboard.LocalAdapter)
	return !local
}

// memberCounts returns the rooms with members and their connection
// counts, across the cluster when clustered.
func (h *Hub) memberCounts(ctx context.Context) (map[string]int, error) {
	if !h.clustered() {
		return h.rooms.localMembers(), nil
	}
	socks, err := h.ns.FetchSockets(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range socks {
		for _, room := range s.Rooms {
			if room != s.ID && !strings.HasPrefix(room, "\x00") {
				out[room]++
			}
		}
	}
	return out, nil
}

func (h *Hub) apiRooms(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.StoreTimeout)
	defer cancel()
	counts, err := h.memberCounts(ctx)
	if err != nil {
		h.log.Error("api: listing rooms", "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "cannot list rooms")
		return
	}
	logs := map[string]uint64{}
	if h.store != nil {
		names, err := h.durableRoomNames(ctx)
		if err != nil {
			h.log.Error("api: listing durable rooms", "err", err)
			writeError(w, http.StatusInternalServerError, CodeInternal, "cannot list durable rooms")
			return
		}
		for _, name := range names {
			info, ok, err := h.store.Info(ctx, durableKey(name))
			if err == nil && ok {
				logs[name] = info.Last
			}
		}
	}
	names := make([]string, 0, len(counts)+len(logs))
	for name := range counts {
		names = append(names, name)
	}
	for name := range logs {
		if _, dup := counts[name]; !dup {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := make([]RoomInfo, 0, len(names))
	for _, name := range names {
		out = append(out, RoomInfo{Name: name, Members: counts[name], Durable: h.IsDurable(name), LastOffset: logs[name]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

func (h *Hub) apiRoom(w http.ResponseWriter, r *http.Request) {
	room := strings.TrimPrefix(r.URL.Path, "/api/rooms/")
	if bad := h.checkRoom(room); bad != nil {
		writeJSON(w, http.StatusBadRequest, bad)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.StoreTimeout)
	defer cancel()
	info := RoomInfo{Name: room, Durable: h.IsDurable(room)}
	if h.clustered() {
		socks, err := h.ns.In(room).FetchSockets(ctx)
		if err != nil {
			writeError(w, http.StatusInternalServerError, CodeInternal, "cannot count members")
			return
		}
		info.Members = len(socks)
	} else {
		info.Members = len(h.ns.Adapter().Sockets([]string{room}))
	}
	hasLog := false
	if h.store != nil {
		li, ok, err := h.store.Info(ctx, durableKey(room))
		if err != nil {
			h.log.Error("api: room info", "room", room, "err", err)
			writeError(w, http.StatusInternalServerError, CodeInternal, "cannot read the room's log")
			return
		}
		hasLog = ok
		info.LastOffset = li.Last
	}
	if info.Members == 0 && !hasLog {
		writeError(w, http.StatusNotFound, CodeNotFound, "room "+room+" has no members and no log")
		return
	}
	if h.isPresence(room) {
		ids, err := h.rooms.identities(ctx, room)
		if err != nil {
			h.log.Error("api: presence", "room", room, "err", err)
			writeError(w, http.StatusInternalServerError, CodeInternal, "cannot read the room's presence")
			return
		}
		info.Identities = ids
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *Hub) apiDisconnect(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SID      string `json:"sid"`
		Identity string `json:"identity"`
	}
	if !h.decodeBody(w, r, &body) {
		return
	}
	if (body.SID == "") == (body.Identity == "") {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "give exactly one of sid and identity")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.StoreTimeout)
	defer cancel()
	socks, err := h.ns.FetchSockets(ctx)
	if err != nil {
		writeError(w, http.StatusInternalServerError, CodeInternal, "cannot list connections")
		return
	}
	n := 0
	for _, s := range socks {
		match := s.ID == body.SID
		if body.Identity != "" {
			info := infoOf(s.Data)
			match = info != nil && info.Identity == body.Identity
		}
		if match {
			if err := s.Disconnect(false); err == nil {
				n++
			}
		}
	}
	if n == 0 {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such connection")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "disconnected": n})
}
