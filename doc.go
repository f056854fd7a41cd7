// Package midstream holds what every midstream package shares: the stream
// entry type, entry IDs, codecs between Go values and entry fields, reserved
// field names and sentinel errors.
//
// midstream is a toolkit over Redis Streams: typed producers (package
// producer), consumer-group workers, dead-letter queues, safe retention,
// activity feeds and notifications. See the README for the package map.
//
// # Wire format
//
// An entry is a flat map of string fields, readable by redis-cli and any other
// Redis client. A [Codec] turns a Go value into fields and back:
//
//   - [FlatCodec] maps struct fields to entry fields through `redis` struct
//     tags, so entries written by other clients in a flat layout
//     (userId, action, amount, timestamp) decode into structs;
//   - [JSONCodec] stores a value as JSON in one field;
//   - [MapCodec] passes a map[string]string through.
//
// # Reserved field names
//
// midstream carries metadata in entry fields whose names user fields may not
// take: "traceparent", "tracestate" and "baggage" (W3C trace context, under
// the names HTTP uses), every name starting with "header:" (user headers,
// "header:tenant" for the header "tenant") and every name starting with
// "dlq:" (the provenance a dead-letter entry carries). Encoding a user field
// with one of these names fails with [ErrReservedField]; decoding ignores
// them.
package midstream
