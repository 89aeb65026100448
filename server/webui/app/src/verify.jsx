// How a receiver checks that a webhook came from us: code for six
// languages with the Standard Webhooks libraries, with the endpoint's
// signing secret filled in once it is shown.
import { useState } from "preact/hooks";
import { CopyButton, Tabs } from "./ui.jsx";

const PLACEHOLDER = "whsec_…";

/** snippets returns, per language, how to install the library and code that verifies a webhook. */
export function snippets(secret) {
  const s = secret || PLACEHOLDER;
  return {
    node: {
      label: "Node.js",
      install: "npm install standardwebhooks",
      code: `import http from "node:http";
import { Webhook } from "standardwebhooks";

const wh = new Webhook("${s}");

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      try {
        // Throws unless the signature and timestamp are right.
        const event = wh.verify(Buffer.concat(chunks).toString("utf8"), req.headers);
        console.log("verified", event.type, req.headers["webhook-id"]);
        res.writeHead(204).end();
      } catch (err) {
        res.writeHead(400).end();
      }
    });
  })
  .listen(process.env.PORT || 3000);
`,
    },
    python: {
      label: "Python",
      install: "pip install standardwebhooks",
      code: `from standardwebhooks.webhooks import Webhook

wh = Webhook("${s}")

# In your handler, with the raw request body (bytes or str) and its headers:
def handle(body, headers):
    # Raises unless the signature and timestamp are right.
    event = wh.verify(body, headers)
    print("verified", event["type"])
`,
    },
    go: {
      label: "Go",
      install: "go get github.com/standard-webhooks/standard-webhooks/libraries/go",
      code: `package main

import (
	"io"
	"log"
	"net/http"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	wh, err := standardwebhooks.NewWebhook("${s}")
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || wh.Verify(body, r.Header) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		log.Printf("verified %s", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe(":3000", nil))
}
`,
    },
    ruby: {
      label: "Ruby",
      install: "gem install standardwebhooks",
      code: `require "standardwebhooks"

wh = StandardWebhooks::Webhook.new("${s}")

# In your handler, with the raw request body and its headers:
def handle(wh, body, headers)
  # Raises unless the signature and timestamp are right.
  event = wh.verify(body, headers)
  puts "verified #{event["type"]}"
end
`,
    },
    php: {
      label: "PHP",
      install: "composer require standard-webhooks/standard-webhooks",
      code: `<?php
require __DIR__ . '/vendor/autoload.php';

$wh = new \\StandardWebhooks\\Webhook('${s}');

$headers = [
    'webhook-id' => $_SERVER['HTTP_WEBHOOK_ID'] ?? '',
    'webhook-timestamp' => $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '',
    'webhook-signature' => $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '',
];
try {
    // Throws unless the signature and timestamp are right.
    $event = $wh->verify(file_get_contents('php://input'), $headers);
    http_response_code(204);
} catch (Exception $e) {
    http_response_code(400);
}
`,
    },
    java: {
      label: "Java",
      install: "Maven: com.standardwebhooks:standardwebhooks",
      code: `import com.standardwebhooks.Webhook;
import java.net.http.HttpHeaders;
import java.util.List;
import java.util.Map;

public class Receiver {
    private static final Webhook WH = new Webhook("${s}");

    // Call with the raw request body and its webhook-* headers; it throws
    // WebhookVerificationException unless the signature and timestamp are right.
    public static void verify(String body, String id, String timestamp, String signature) throws Exception {
        HttpHeaders headers = HttpHeaders.of(Map.of(
                "webhook-id", List.of(id),
                "webhook-timestamp", List.of(timestamp),
                "webhook-signature", List.of(signature)), (name, value) -> true);
        WH.verify(body, headers);
    }
}
`,
    },
  };
}

const ORDER = ["node", "python", "go", "ruby", "php", "java"];

/**
 * Verify shows the snippets; secret is the endpoint's signing secret when
 * it is shown, or "" (then onReveal, if set, offers to show it).
 */
export function Verify({ secret, onReveal }) {
  const [lang, setLang] = useState("node");
  const all = snippets(secret);
  const sn = all[lang];
  return (
    <div class="verify" data-testid="verify">
      <p>
        Every webhook carries the headers <code>webhook-id</code>, <code>webhook-timestamp</code> and <code>webhook-signature</code> (the{" "}
        <em>Standard Webhooks</em> format). Check them with your endpoint's signing secret before you trust the body, using the library for your
        language:
      </p>
      {!secret && onReveal && (
        <p>
          <button type="button" class="btn btn-small" onClick={onReveal} data-testid="reveal-secret">
            Show the signing secret in the code
          </button>
        </p>
      )}
      <Tabs label="Language" items={ORDER.map((k) => [k, all[k].label])} current={lang} onChange={setLang} testid="languages" />
      <p class="install">
        <span class="hint">Install: </span>
        <code data-testid="install">{sn.install}</code>
      </p>
      <pre class="code" tabindex="0" aria-label={`${sn.label} code`} data-testid="snippet" data-lang={lang}>
        {sn.code}
      </pre>
      <CopyButton text={sn.code} label="Copy code" what={`in ${sn.label}`} testid="copy-snippet" />
    </div>
  );
}
