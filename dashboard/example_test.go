package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/dashboard"
)

// Mounting the dashboard under a path of a service's own mux: the page is
// then at /midstream/ (mind the trailing slash), its API beside it.
func ExampleNew() {
	mr, err := miniredis.Run() // any Redis; a real server in production
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: "orders", Values: []string{"id", "1"}})

	d, err := dashboard.New(rdb, dashboard.WithPatterns("orders*"))
	if err != nil {
		log.Fatal(err)
	}
	// Optional: keep the charts' history while no page is open.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	mux := http.NewServeMux()
	mux.Handle("/midstream/", http.StripPrefix("/midstream", d))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/midstream/api/overview", nil))
	var o struct {
		Writable bool `json:"writable"`
		Streams  []struct {
			Stream string `json:"stream"`
			Length int64  `json:"length"`
		} `json:"streams"`
	}
	if err := json.NewDecoder(rec.Body).Decode(&o); err != nil {
		log.Fatal(err)
	}
	fmt.Println("writable:", o.Writable)
	for _, s := range o.Streams {
		fmt.Println(s.Stream, s.Length)
	}
	// Output:
	// writable: false
	// orders 1
}

// Write actions (redrive, delete) with a bearer token the page asks for.
func ExampleWithWriteActions() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	d, err := dashboard.New(rdb, dashboard.WithWriteActions(), dashboard.WithToken("a long random secret"))
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", d))
}
