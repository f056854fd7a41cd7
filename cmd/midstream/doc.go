// Command midstream inspects and operates Redis streams, their consumer
// groups, pending entries and dead-letter streams, and serves a web
// dashboard with Prometheus metrics.
//
//	go install github.com/midstream-go/midstream/cmd/midstream@latest
//
// # Connecting
//
// --url (or $REDIS_URL) takes redis://[user:password@]host:port/db, or
// rediss:// for TLS; --cluster takes Redis Cluster seed addresses (SCAN then
// runs on every master); --sentinel-master with --sentinel addresses
// connects through Sentinel. --user and --password (or $REDIS_PASSWORD)
// set the ACL user and password; --tls turns TLS on for --cluster and
// --sentinel. --timeout bounds each command (default 10s).
//
// # Commands
//
//	streams [PATTERN]          streams matching a glob: length, groups, lag, pending, oldest pending, dead letters, partitions
//	stream NAME                groups, consumers, trim preview (--max-len, --max-age); a partitioned stream's partitions
//	pending STREAM GROUP       a group's pending entries, a page at a time (--after, --consumer, --min-idle)
//	entry STREAM ID            one entry
//	dlq list STREAM            dead letters (--group, --reason, --older-than, --newer-than)
//	dlq show STREAM ID         one dead letter with its provenance
//	dlq redrive STREAM         send dead letters back (--id or filters; --rate, --max, --dry-run, --yes)
//	dlq delete STREAM          delete dead letters (--id or filters; --dry-run, --yes)
//	dlq purge STREAM           delete the dead-letter stream (--dry-run, --yes)
//	tail STREAM                entries as they arrive, gap-free (--from now|beginning|ID, --filter name=value)
//	top [PATTERN]              a refreshing view of rates, lag, pending and dead letters
//	dashboard                  the web dashboard and /metrics (--listen, --pattern, --write, --token)
//
// # Partitioned streams
//
// A partitioned stream (midstream.Partitions: one logical stream over several
// partition streams, its layout stored in Redis) is recognised by its
// logical name. streams lists it with the totals of its partitions
// (partitions: their number) and marks each partition it lists (partition_of).
// stream NAME shows the totals (groups and consumers merged by name), then
// each partition with its dead-letter stream and its own trim preview (each
// partition is trimmed against its own groups). A partitioned stream has no
// dead-letter stream or pending entries of its own: dlq and pending on its
// name fail with exit status 2 and name the partitions to use instead (for
// dlq, those holding dead letters, and how many); run them on a partition.
//
// redrive, delete and purge ask for confirmation on a terminal and need
// --yes otherwise; with --dry-run they print what they would do and change
// nothing. They act on the entries selected before the question, never on
// entries dead-lettered since. Exit status: 0 on success, 1 on an error, 2
// on a bad command line.
//
// # JSON output
//
// With --output json every command prints JSON whose field names are
// stable: snake case, durations in milliseconds (fields ending in _ms),
// times in RFC 3339, values Redis cannot tell (a group's lag after an XDEL)
// null. tail and top print one object per line; the others one object.
//
//	streams       {"streams": [StreamSummary], "truncated": bool}
//	stream        {"health": StreamHealth, "trim": TrimView}; for a partitioned stream, the totals
//	              (last_id, dead_letter.key and the cutoffs "") with "partitions": [{"health", "trim"}]
//	pending       {"stream", "group", "entries": [{"id", "consumer", "idle_ms", "deliveries", "fields"?, "deleted"?}], "next"}
//	entry, tail   {"stream", "id", "time", "fields": {name: value}}
//	dlq list      {"key", "entries": [DeadLetter], "next"}
//	dlq show      DeadLetter
//	dlq redrive|delete|purge
//	              {"key", "dry_run", "ids", "truncated", "redrive"?: {"redriven", "skipped", "empty", "new_ids"}, "deleted"}
//	top           {"time", "streams": [StreamSummary + {"added_per_sec", "delivered_per_sec"}], "truncated"}
//
//	StreamSummary {"stream", "length", "last_id", "entries_added", "entries_read", "groups",
//	               "lag" (largest known group lag, or null), "pending" (all groups),
//	               "oldest_pending_age_ms", "dead_letter_key", "dead_letters",
//	               "partitions" (a partitioned stream's count, else 0),
//	               "partition_of" (a partition's partitioned stream, else "")}
//	StreamHealth  the health package's JSON form (see its documentation)
//	TrimView      {"policy", "removable", "cutoff", "policy_cutoff", "held_back",
//	               "held_back_by": [{"stream"?, "group", "until", "reason"}], "length_after", "more"}
//	               (stream: the partition, in a partitioned stream's totals)
//	DeadLetter    {"id", "dead_lettered_at", "source", "group", "consumer", "original_id",
//	               "deliveries", "reason", "fields": {name: value}}
//
// A "next" cursor is "" after the last page; pass it as --after.
//
// # Dashboard and metrics
//
// `midstream dashboard` serves the dashboard package's handler at / and
// the health gauges (midstream_stream_length, midstream_deadletter_depth,
// midstream_group_lag, midstream_group_pending,
// midstream_group_pending_oldest_age_seconds, midstream_group_consumers) of
// every stream matching --pattern at /metrics, through the OpenTelemetry
// Prometheus exporter; streams that appear or go are picked up every 30
// seconds. It listens on 127.0.0.1:8080 by default and then answers only
// requests addressed to a loopback name; it is read-only unless --write,
// and --write on another address needs --token.
package main
