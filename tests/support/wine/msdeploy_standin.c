/* A stand-in for msdeploy.exe (and for iiswsgi.exe in the post-install tests): writes the
 * command line it received and its argument vector, as the Microsoft C runtime splits it, to
 * the file STANDIN_OUT names (UTF-8, one `[i]arg` line each), then exits with STANDIN_EXIT
 * (default 0). Built with mingw-w64 by tests/deploy_cmd.rs and run under Wine. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

static void put(FILE *f, const wchar_t *s) {
    char buf[32768];
    int n = WideCharToMultiByte(CP_UTF8, 0, s, -1, buf, sizeof buf, NULL, NULL);
    if (n > 0) fputs(buf, f);
}

int wmain(int argc, wchar_t **argv) {
    const wchar_t *out = _wgetenv(L"STANDIN_OUT");
    FILE *f = out ? _wfopen(out, L"wb") : stdout;
    if (!f) return 124;
    put(f, GetCommandLineW());
    fputc('\n', f);
    for (int i = 0; i < argc; i++) {
        fprintf(f, "[%d]", i);
        put(f, argv[i]);
        fputc('\n', f);
    }
    if (f != stdout) fclose(f);
    const wchar_t *code = _wgetenv(L"STANDIN_EXIT");
    return code ? _wtoi(code) : 0;
}
