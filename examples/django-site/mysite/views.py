from django.http import HttpResponse, JsonResponse


def index(request):
    return HttpResponse("Hello from Django on IIS!\n", content_type="text/plain")


def hello(request, name):
    """Echoes a path segment back (checks that non-ASCII paths arrive decoded)."""
    return JsonResponse({"hello": name, "script_name": request.META.get("SCRIPT_NAME", "")})
