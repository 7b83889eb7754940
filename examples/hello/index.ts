// A web-standard fetch function: Nimbus hands it a Request and sends back the Response it returns.
// Try it: `nimbus invoke hello --path /world` or `curl http://127.0.0.1:8080/fn/hello/world`.
export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const who = url.searchParams.get('name');
    // Anything a function prints lands in its log: `nimbus logs hello`.
    console.log(`${request.method} ${url.pathname}`);
    const greeting = who ? `Hello, ${who}, from Nimbus!` : 'Hello from Nimbus!';
    return new Response(`${greeting} You asked for ${request.method} ${url.pathname}\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  },
};
