// Claude through router-ml's proxy, from TypeScript: the official SDK with `baseURL` pointed at the
// proxy and `model: "auto"`. Start the proxy first (`router-ml serve --port 8080`), then `npm start`.
//
//   ROUTER_ML_PROXY_URL    where the proxy listens (default http://127.0.0.1:8080)
//   ANTHROPIC_API_KEY      your key: the proxy passes it to Anthropic and never logs it; leave it
//                          unset when the proxy holds its own key
//   ROUTER_ML_PROXY_TOKEN  the proxy's access token, if it was started with one
import Anthropic from "@anthropic-ai/sdk";

const apiKey = process.env.ANTHROPIC_API_KEY || null;
const token = process.env.ROUTER_ML_PROXY_TOKEN || null;

const client = new Anthropic({
  baseURL: process.env.ROUTER_ML_PROXY_URL ?? "http://127.0.0.1:8080",
  apiKey,
  // Without a key of our own, send no Authorization header at all: the proxy then uses its key.
  defaultHeaders: { "x-router-token": token, ...(apiKey ? {} : { Authorization: null }) },
});

function textOf(message: Anthropic.Message): string {
  return message.content.map((block) => (block.type === "text" ? block.text : "")).join("");
}

async function main(): Promise<void> {
  // 1. The router picks the tier; the body is the API's own, the choice is in the headers.
  const { data: reply, response } = await client.messages
    .create({
      model: "auto",
      max_tokens: 256,
      messages: [{ role: "user", content: "Translate 'good night' into Spanish." }],
    })
    .withResponse();
  const h = response.headers;
  console.log(`routed: ${h.get("x-router-tier")} -> ${h.get("x-router-model")} (${h.get("x-router-source")}, ` +
    `confidence ${h.get("x-router-confidence")})`);
  console.log(`answer: ${textOf(reply)}`);

  // 2. Streaming, never above Sonnet: events arrive as the model writes; the SDK assembles the message.
  const stream = client.messages.stream({
    model: "auto:sonnet",
    max_tokens: 512,
    messages: [{ role: "user", content: "Design a sharded, multi-region architecture for our billing system." }],
  });
  let deltas = 0;
  stream.on("text", () => { deltas += 1; });
  const final = await stream.finalMessage();
  console.log(`streamed: ${deltas} text deltas from ${final.model}, stop_reason ${final.stop_reason}, ` +
    `${final.usage.output_tokens} output tokens`);
  console.log(`answer: ${textOf(final)}`);

  // 3. Counting tokens goes through the proxy too.
  const count = await client.messages.countTokens({
    model: "auto",
    messages: [{ role: "user", content: "How many tokens is this?" }],
  });
  console.log(`count_tokens: ${count.input_tokens}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Anthropic.APIError ? `API error ${err.status}: ${err.message}` : err);
  process.exit(1);
});
