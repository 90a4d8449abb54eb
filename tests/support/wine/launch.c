/* Runs the command line in the LAUNCH environment variable with CreateProcessW, exactly as
 * written (no C-runtime re-quoting), waits, and exits with its exit code: how a CI agent or
 * msdeploy starts `cmd.exe /c ...`. Built with mingw-w64 by tests/deploy_cmd.rs. */
#include <windows.h>
#include <stdlib.h>
#include <wchar.h>

int wmain(void) {
    const wchar_t *line = _wgetenv(L"LAUNCH");
    if (!line) return 125;
    wchar_t *copy = _wcsdup(line);
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    ZeroMemory(&si, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(NULL, copy, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) return 126;
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 127;
    GetExitCodeProcess(pi.hProcess, &code);
    return (int)code;
}
