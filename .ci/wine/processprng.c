/*
 * bcryptprimitives.dll for Wine 8, which lacks it.
 *
 * Rust's standard library (1.78+) seeds HashMap keys and fills random buffers through
 * ProcessPrng in bcryptprimitives.dll; Wine 8 ships no such DLL, so every Rust program dies at
 * start-up with a missing import. This stand-in exports ProcessPrng and forwards to
 * RtlGenRandom (advapi32!SystemFunction036), which Wine has always implemented. It exists
 * only for the CI's Wine prefix (.ci/windows builds it into system32 there); it is never
 * shipped and never used on real Windows, which has the real DLL.
 */
#include <windows.h>

/* RtlGenRandom's real name; mingw's headers only declare it under a macro. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Fills `data` with `len` random bytes. Documented as always returning TRUE. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
