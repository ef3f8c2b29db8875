"""An unmodified WSGI app on Python's stdlib server (wsgiref), as tests/proxy/cgi.rs
runs it behind the proxy. wsgiref reads headers the CGI way: `HTTP_` + the name upper-
cased with `-` turned into `_`, repeated headers joined with `,`, values stripped; it
decodes PATH_INFO once. The app answers with what it read, one `KEY=VALUE` per line,
and reads the method and host the way Flask/Werkzeug and many frameworks do (method
upper-cased, or taken from `X-HTTP-Method-Override`; host cut at the first `:`)."""

import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def app(environ, start_response):
    seen = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    # Method-override middleware (Express, Rails, Laravel) serves the named method.
    override = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", environ["REQUEST_METHOD"])
    seen["METHOD"] = override.upper()
    # PEP 3333: PATH_INFO holds the decoded bytes as latin-1.
    seen["PATH"] = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
    seen["HOST"] = environ.get("HTTP_HOST", "").split(":")[0].lower().rstrip(".")
    body = "".join(f"{k}={v}\n" for k, v in sorted(seen.items()))
    body = ("APP\n" + body).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    with make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=Quiet) as server:
        server.serve_forever()
