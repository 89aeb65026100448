// The endpoint form's transformation: JavaScript that reshapes each event
// before it is sent, in an editor with line numbers, and a test that runs
// it on the catalog's example payloads and shows what the endpoint would
// get, or where the script failed.
import { useRef, useState } from "preact/hooks";
import { Json, pretty } from "../ui.jsx";

const TEST = `query TestTransformation($script: String!, $payload: JSON, $type: String, $url: String) {
  testTransformation(script: $script, payload: $payload, eventType: $type, url: $url) {
    skipped body headers { name value } method url error line column durationMs
  }
}`;

/** EXAMPLE is the script the editor offers to start from. */
export const EXAMPLE = `function handler(webhook) {
  // Change webhook.payload, add webhook.headers["X-Name"] = "value",
  // or return null to not send this event.
  return webhook;
}
`;

/** SAMPLE is the event tried when the catalog has no example payloads. */
const SAMPLE = { name: "test.ping", example: { message: "A test event" } };

/** Editor is a code textarea with line numbers; the line with an error is marked. */
function Editor({ id, value, onInput, errorLine, describedBy }) {
  const gutter = useRef(null);
  const lines = Math.max(1, value.split("\n").length);
  return (
    <div class="editor">
      <pre class="editor-gutter" ref={gutter} aria-hidden="true">
        {Array.from({ length: lines }, (_, i) => (
          <span class={errorLine === i + 1 ? "editor-error-line" : undefined}>{`${i + 1}\n`}</span>
        ))}
      </pre>
      <textarea
        id={id}
        class="editor-text"
        rows={Math.min(18, Math.max(6, lines + 1))}
        wrap="off"
        spellcheck={false}
        autocomplete="off"
        value={value}
        onInput={(e) => onInput(e.currentTarget.value)}
        onScroll={(e) => gutter.current && (gutter.current.scrollTop = e.currentTarget.scrollTop)}
        aria-describedby={describedBy}
        data-testid="transformation"
      />
    </div>
  );
}

export const transformation = {
  name: "transformation",
  initial: (ep) => ({ transformation: ep && ep.transformation ? ep.transformation : "" }),
  toInput: (v) => ({ transformation: v.transformation.trim() ? v.transformation : null }),
  Section({ v, set, err, id, api, catalog }) {
    const samples = catalog.filter((t) => t.example !== null && t.example !== undefined);
    const choices = samples.length ? samples : [SAMPLE];
    const [sample, setSample] = useState(choices[0].name);
    const [result, setResult] = useState(null); // the test's result, or {failed: message}
    const [busy, setBusy] = useState(false);
    const http = !v.type || v.type === "HTTP";
    const run = async () => {
      setBusy(true);
      setResult(null);
      const t = choices.find((c) => c.name === sample) || choices[0];
      try {
        const d = await api.gql(TEST, { script: v.transformation || EXAMPLE, payload: t.example, type: t.name, url: http ? v.url || "https://example.com/webhooks" : null });
        setResult(d.testTransformation);
      } catch (x) {
        setResult({ failed: x.message });
      } finally {
        setBusy(false);
      }
    };
    const error = err("transformation");
    const lineOf = /\(line (\d+), column \d+\)/.exec(error || "");
    const errorLine = result && result.line ? result.line : lineOf ? Number(lineOf[1]) : 0;
    const hintId = id("transformation-hint");
    const errId = id("transformation-error");
    return (
      <details class="advanced" open={!!(v.transformation || error)} data-testid="transformation-section">
        <summary>Transformation</summary>
        <div class={`field${error ? " field-invalid" : ""}`}>
          <label for={id("transformation")}>Script (optional)</label>
          <p class="hint" id={hintId}>
            JavaScript that changes each event before it is sent: a function <code>handler(webhook)</code> that returns the webhook (its <code>payload</code>,{" "}
            <code>headers</code>
            {http && (
              <>
                , <code>method</code> and <code>url</code>
              </>
            )}
            ), or <code>null</code> to not send the event. Leave it empty to send events as they are.
          </p>
          <Editor id={id("transformation")} value={v.transformation} onInput={(x) => set("transformation", x)} errorLine={errorLine} describedBy={[error ? errId : "", hintId].filter(Boolean).join(" ")} />
          {error && (
            <p class="field-error" id={errId} data-testid="field-error">
              {error}
            </p>
          )}
          {!v.transformation && (
            <p>
              <button type="button" class="btn btn-small btn-quiet" onClick={() => set("transformation", EXAMPLE)} data-testid="transformation-start">
                Start from an example
              </button>
            </p>
          )}
        </div>
        <div class="transform-test">
          <label for={id("transformation-sample")}>Try it on</label>
          <select id={id("transformation-sample")} value={sample} onChange={(e) => setSample(e.currentTarget.value)} data-testid="transformation-sample">
            {choices.map((c) => (
              <option value={c.name}>{samples.length ? `The example of ${c.name}` : "A test event"}</option>
            ))}
          </select>
          <button type="button" class="btn btn-small" onClick={run} disabled={busy} data-testid="transformation-test">
            Test
          </button>
        </div>
        <div role="status" data-testid="transformation-result">
          {result && <TestResult r={result} />}
        </div>
      </details>
    );
  },
};

function TestResult({ r }) {
  if (r.failed) return <p class="field-error">The test could not run: {r.failed}</p>;
  if (r.error) {
    return (
      <p class="field-error" data-testid="transformation-error">
        The script failed{r.line ? ` at line ${r.line}, column ${r.column}` : ""}: {r.error}
      </p>
    );
  }
  if (r.skipped) return <p data-testid="transformation-skipped">The script returned null: this event would not be sent to the endpoint.</p>;
  return (
    <div class="transform-result">
      <p>
        The endpoint would get this{r.method || r.url ? "" : " body"}
        {r.method && (
          <>
            {" "}
            with the method <code>{r.method}</code>
          </>
        )}
        {r.url && (
          <>
            {" "}
            at <code>{r.url}</code>
          </>
        )}{" "}
        (the script took {r.durationMs.toFixed(1)} ms):
      </p>
      <Json value={pretty(r.body)} label="Body the endpoint would get" />
      {r.headers.length > 0 && (
        <>
          <p>With these headers added:</p>
          <ul class="transform-headers">
            {r.headers.map((h) => (
              <li>
                <code>
                  {h.name}: {h.value}
                </code>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
