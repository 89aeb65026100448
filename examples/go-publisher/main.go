// Command go-publisher is an example publisher: it publishes one event
// with Herald's Go client.
//
//	HERALD_URL=http://localhost:8080 HERALD_API_KEY=hrld_… \
//	  go run ./examples/go-publisher -type order.created -data '{"orderId": "ord_1"}'
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/heraldhq/herald/client"
)

func main() {
	typ := flag.String("type", "order.created", "event type")
	data := flag.String("data", `{"orderId": "ord_1042", "total": 4990}`, "payload (JSON)")
	key := flag.String("idempotency-key", "", "publishing again with the same key sends nothing new")
	flag.Parse()

	c, err := client.New(client.Config{URL: os.Getenv("HERALD_URL"), APIKey: os.Getenv("HERALD_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := client.PublishEventInput{EventType: *typ, Payload: json.RawMessage(*data)}
	if *key != "" {
		in.IdempotencyKey = key
	}
	ev, err := c.Publish(ctx, in)
	if client.IsCode(err, client.CodeBadUserInput) {
		log.Fatalf("the event was refused: %v", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("published %s (%s) to %d endpoint(s)\n", ev.ID, ev.EventType, ev.DeliveryCount)
}
