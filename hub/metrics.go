package hub

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// MaxDurableRoomMetrics bounds how many durable rooms get per-room series
// in /metrics (the first ones in name order), to keep scrapes cheap.
const MaxDurableRoomMetrics = 1000

// metrics are the hub's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg            *prometheus.Registry
	publishes      *prometheus.CounterVec
	publishLatency *prometheus.HistogramVec
	roomEvents     *prometheus.CounterVec
	presenceEvents *prometheus.CounterVec
	authFailures   prometheus.Counter
}

func newMetrics(h *Hub) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_publishes_total",
			Help: "Publishes handled, by source (socket, http) and result (ok, duplicate, forbidden, invalid, error).",
		}, []string{"source", "result"}),
		publishLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_publish_duration_seconds",
			Help:    "Time from receiving a publish to its answer (stored for durable rooms, sent otherwise).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"source", "durable"}),
		roomEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_room_events_total",
			Help: "Room lifecycle events of client rooms on this node: create-room, delete-room, join-room, leave-room.",
		}, []string{"event"}),
		presenceEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_presence_events_total",
			Help: "Presence notices sent (switchboard:join, switchboard:leave).",
		}, []string{"event"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_auth_failures_total",
			Help: "Connections refused as unauthorized.",
		}),
	}
	for _, k := range []string{"create-room", "delete-room", "join-room", "leave-room"} {
		m.roomEvents.WithLabelValues(k)
	}
	m.reg.MustRegister(m.publishes, m.publishLatency, m.roomEvents, m.presenceEvents, m.authFailures,
		&statsCollector{h: h},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var (
	descConnections = prometheus.NewDesc("switchboard_connections",
		"Open Engine.IO connections by transport.", []string{"transport"}, nil)
	descSockets = prometheus.NewDesc("switchboard_sockets",
		"Connected sockets (all namespaces).", nil, nil)
	descEventsIn = prometheus.NewDesc("switchboard_events_received_total",
		"Events received from clients.", nil, nil)
	descEventsOut = prometheus.NewDesc("switchboard_events_sent_total",
		"Events queued to clients (a broadcast counts once per receiver).", nil, nil)
	descBytesIn = prometheus.NewDesc("switchboard_received_bytes_total",
		"Engine.IO message bytes received.", nil, nil)
	descBytesOut = prometheus.NewDesc("switchboard_sent_bytes_total",
		"Engine.IO message bytes queued to clients.", nil, nil)
	descRooms = prometheus.NewDesc("switchboard_rooms",
		"Client rooms with members on this node.", nil, nil)
	descDedupe = prometheus.NewDesc("switchboard_dedupe_ids",
		"Publish ids remembered for idempotent publish.", nil, nil)
	descDurableRooms = prometheus.NewDesc("switchboard_durable_rooms",
		"Durable rooms with a log.", nil, nil)
	descLastOffset = prometheus.NewDesc("switchboard_durable_last_offset",
		"Offset of the newest event of a durable room.", []string{"room"}, nil)
	descLogEvents = prometheus.NewDesc("switchboard_durable_log_events",
		"Events kept in a durable room's log.", []string{"room"}, nil)
	descBacklog = prometheus.NewDesc("switchboard_durable_backlog",
		"Events of a durable room its slowest subscriber has not acknowledged (0 without subscribers).", []string{"room"}, nil)
	descSubscribers = prometheus.NewDesc("switchboard_durable_subscribers",
		"Durable subscriptions of a room.", []string{"room"}, nil)
	descUp = prometheus.NewDesc("switchboard_build_info",
		"Always 1; the version label names the build.", []string{"version"}, nil)
)

// statsCollector reads Server.Stats and the store at scrape time.
type statsCollector struct{ h *Hub }

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descSockets, descEventsIn, descEventsOut, descBytesIn,
		descBytesOut, descRooms, descDedupe, descDurableRooms, descLastOffset, descLogEvents, descBacklog, descSubscribers, descUp} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	st := h.srv.Stats()
	for _, t := range []string{"polling", "websocket"} {
		ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(st.Connections[t]), t)
	}
	ch <- prometheus.MustNewConstMetric(descSockets, prometheus.GaugeValue, float64(st.Sockets))
	ch <- prometheus.MustNewConstMetric(descEventsIn, prometheus.CounterValue, float64(st.EventsIn))
	ch <- prometheus.MustNewConstMetric(descEventsOut, prometheus.CounterValue, float64(st.EventsOut))
	ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(st.BytesIn))
	ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(st.BytesOut))
	ch <- prometheus.MustNewConstMetric(descRooms, prometheus.GaugeValue, float64(h.rooms.count()))
	ch <- prometheus.MustNewConstMetric(descDedupe, prometheus.GaugeValue, float64(h.dedupe.size()))
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1, h.cfg.Version)

	if h.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names, err := h.durableRoomNames(ctx)
	if err != nil {
		h.log.Warn("metrics: cannot list durable rooms", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descDurableRooms, prometheus.GaugeValue, float64(len(names)))
	if len(names) > MaxDurableRoomMetrics {
		names = names[:MaxDurableRoomMetrics]
	}
	for _, room := range names {
		info, ok, err := h.store.Info(ctx, durableKey(room))
		if err != nil || !ok {
			continue
		}
		subs, err := h.store.Subscribers(ctx, durableKey(room))
		if err != nil {
			continue
		}
		var backlog uint64
		for _, s := range subs {
			if pending, acked := info.Last-min(info.Last, s.Cursor), uint64(len(s.Acked)); pending > acked {
				backlog = max(backlog, pending-acked)
			}
		}
		ch <- prometheus.MustNewConstMetric(descLastOffset, prometheus.GaugeValue, float64(info.Last), room)
		ch <- prometheus.MustNewConstMetric(descLogEvents, prometheus.GaugeValue, float64(info.Count), room)
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(backlog), room)
		ch <- prometheus.MustNewConstMetric(descSubscribers, prometheus.GaugeValue, float64(len(subs)), room)
	}
}
