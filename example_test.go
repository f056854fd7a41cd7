package midstream_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/midstream-go/midstream"
)

func ExampleFlatCodec() {
	type Activity struct {
		UserID    string    `redis:"userId"`
		Action    string    `redis:"action"`
		Amount    float64   `redis:"amount"`
		Timestamp time.Time `redis:"timestamp,unixms"`
		Note      *string   `redis:"note"` // optional: nil means absent
	}
	codec, err := midstream.NewFlatCodec[Activity]()
	if err != nil {
		panic(err)
	}
	// An entry as another client (node-redis, redis-cli) wrote it.
	var a Activity
	err = codec.Decode(map[string]string{
		"userId": "123", "action": "purchase", "amount": "9.99", "timestamp": "1710761234567",
	}, &a)
	fmt.Println(a.UserID, a.Action, a.Amount, a.Timestamp.UTC().Format(time.RFC3339), a.Note == nil, err)

	fields, _ := codec.Encode(nil, a)
	fmt.Println(fields)

	// A field that would collide with reserved metadata is refused.
	type Bad struct {
		Trace string `redis:"traceparent"`
	}
	_, err = midstream.NewFlatCodec[Bad]()
	fmt.Println(errors.Is(err, midstream.ErrReservedField))
	// Output:
	// 123 purchase 9.99 2024-03-18T11:27:14Z true <nil>
	// [userId 123 action purchase amount 9.99 timestamp 1710761234567]
	// true
}
