// Command go-receiver is an example webhook receiver: it verifies each
// delivery's Standard Webhooks signature with Herald's Go client and
// handles each event once, however often Herald retries it.
//
//	WEBHOOK_SECRET=whsec_… go run ./examples/go-receiver -addr 127.0.0.1:3000
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"sync"

	"github.com/heraldhq/herald/client/webhook"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	flag.Parse()
	v, err := webhook.NewVerifier(os.Getenv("WEBHOOK_SECRET"))
	if err != nil {
		log.Fatalf("WEBHOOK_SECRET: %v", err)
	}
	var mu sync.Mutex
	seen := map[string]bool{} // a real receiver keeps this in its database

	http.HandleFunc("POST /webhooks", func(w http.ResponseWriter, r *http.Request) {
		msg, err := v.VerifyRequest(r)
		if err != nil {
			log.Printf("refused: %v", err)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		dup := seen[msg.ID]
		seen[msg.ID] = true
		mu.Unlock()
		if dup {
			log.Printf("duplicate %s %s: already handled", msg.Type, msg.ID)
			return // 200: Herald stops retrying
		}
		log.Printf("verified %s %s: %s", msg.Type, msg.ID, msg.Data)
		w.WriteHeader(http.StatusNoContent)
	})
	log.Printf("listening on http://%s/webhooks", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
