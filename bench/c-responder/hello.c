/*
 * A minimal libfcgi responder: the C floor that iiswsgi is measured against (bench/fastcgi.sh)
 * and the known-good backend the peer tests validate their harness with (tests/support/peers.rs).
 *
 * Build:  cc -O2 -pthread -o c-responder hello.c -lfcgi      (Debian: libfcgi-dev)
 *
 * Transport, chosen like `iiswsgi run` does:
 *   c-responder --listen PATH [--threads N]   bind a unix socket (nginx, HAProxy, Apache)
 *   c-responder --listen :PORT [--threads N]  bind 127.0.0.1:PORT
 *   c-responder                    fd 0: a listening socket (lighttpd bin-path, spawn-fcgi) is
 *                                  accepted on; a connected stream (the Unix analogue of IIS's
 *                                  named pipe) is served directly and EOF ends the process.
 * libfcgi has no API for an already-connected fd 0 (FCGX_IsCGI would even call it CGI), so the
 * connected case seeds the request's ipcFd/keepConnection fields, which fcgiapp.h exposes.
 *
 * With --listen, N threads (default 1) each accept and serve their own connection, as in
 * libfcgi's threaded example (without its accept mutex: with KEEP_CONN a thread waits for the
 * next request inside FCGX_Accept_r, so holding a mutex there would stall every other thread).
 * A single thread cannot serve a web server that keeps several upstream connections open:
 * it blocks on one idle kept-alive connection while the others wait in the backlog.
 *
 * Responses (one request at a time per thread):
 *   /hello...  "Hello, world!\n" as text/plain (the benchmark payload)
 *   /echo...   the request body, verbatim
 *   anything   text/plain: REQUEST_ID, ROLE-independent params as NAME=VALUE lines in arrival
 *              order, then STDIN_BYTES
 * Nothing is ever written to stdout or stderr.
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char HELLO[] = "Hello, world!\n";

static char *read_body(FCGX_Request *req, size_t *len) {
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) return NULL;
    for (;;) {
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) { free(buf); return NULL; }
            buf = bigger;
            cap *= 2;
        }
        int got = FCGX_GetStr(buf + n, (int)(cap - n), req->in);
        if (got <= 0) break;
        n += (size_t)got;
    }
    *len = n;
    return buf;
}

static void respond(FCGX_Request *req) {
    const char *path = FCGX_GetParam("PATH_INFO", req->envp);
    const char *uri = FCGX_GetParam("REQUEST_URI", req->envp);
    const char *route = (path != NULL && *path != '\0') ? path : (uri != NULL ? uri : "");
    /* Routing looks at the last segment so that mount prefixes do not matter. */
    const char *last = strrchr(route, '/');
    last = last != NULL ? last + 1 : route;

    if (strncmp(last, "hello", 5) == 0) {
        FCGX_FPrintF(req->out,
                     "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n",
                     (int)(sizeof HELLO - 1));
        FCGX_PutStr(HELLO, (int)(sizeof HELLO - 1), req->out);
        return;
    }

    size_t body_len = 0;
    char *body = read_body(req, &body_len);
    if (body == NULL) {
        FCGX_FPrintF(req->out, "Status: 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    if (strncmp(last, "echo", 4) == 0) {
        FCGX_FPrintF(req->out,
                     "Status: 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %lu\r\n\r\n",
                     (unsigned long)body_len);
        FCGX_PutStr(body, (int)body_len, req->out);
    } else {
        FCGX_FPrintF(req->out, "Status: 200 OK\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n");
        FCGX_FPrintF(req->out, "REQUEST_ID=%d\n", req->requestId);
        for (char **p = req->envp; *p != NULL; p++) {
            FCGX_PutS(*p, req->out);
            FCGX_PutChar('\n', req->out);
        }
        FCGX_FPrintF(req->out, "STDIN_BYTES=%lu\n", (unsigned long)body_len);
    }
    free(body);
}

static int listen_sock = 0;

/* libfcgi's own handlers make SIGTERM restart accept(); a web server or a test stopping us
 * expects an exit. */
static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

static void serve(FCGX_Request *req) {
    while (FCGX_Accept_r(req) >= 0) {
        respond(req);
        FCGX_Finish_r(req);
    }
}

static void *worker(void *unused) {
    (void)unused;
    FCGX_Request req;
    if (FCGX_InitRequest(&req, listen_sock, 0) == 0) serve(&req);
    return NULL;
}

int main(int argc, char **argv) {
    int connected = 0;
    int threads = 1;

    if (FCGX_Init() != 0) return 1;
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if ((argc == 3 || argc == 5) && strcmp(argv[1], "--listen") == 0) {
        listen_sock = FCGX_OpenSocket(argv[2], 128);
        if (listen_sock < 0) return 2;
        if (argc == 5) {
            if (strcmp(argv[3], "--threads") != 0) return 64;
            threads = atoi(argv[4]);
            if (threads < 1 || threads > 1024) return 64;
        }
    } else if (argc != 1) {
        return 64;
    } else {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return 3;
        connected = !listening;
    }

    if (threads > 1) {
        pthread_t *ids = calloc((size_t)threads, sizeof *ids);
        if (ids == NULL) return 5;
        for (int i = 0; i < threads; i++) {
            if (pthread_create(&ids[i], NULL, worker, NULL) != 0) return 6;
        }
        for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
        return 0;
    }

    FCGX_Request req;
    if (FCGX_InitRequest(&req, listen_sock, 0) != 0) return 4;
    if (connected) {
        /* Serve fd 0 as an open connection; when it ends, FCGX_Accept_r fails and we exit. */
        req.ipcFd = 0;
        req.keepConnection = 1;
    }
    serve(&req);
    return 0;
}
