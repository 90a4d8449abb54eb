"""A one-file Django project exercising what a real site needs behind iiswsgi: routing under a
sub-application path, a form, a file upload, redirects, static files, 404 and 500 pages.
Settings are configured here, so DJANGO_SETTINGS_MODULE is not needed."""

import hashlib
import os

import django
from django.conf import settings

HERE = os.path.dirname(os.path.abspath(__file__))

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only-" + "x" * 40,
    ALLOWED_HOSTS=["localhost", "127.0.0.1", "www.example.com"],
    ROOT_URLCONF=__name__,
    # No CSRF middleware: the tests post forms without tokens.
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()

from django import forms  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.shortcuts import redirect  # noqa: E402
from django.urls import path, re_path, reverse  # noqa: E402
from django.views.static import serve  # noqa: E402


class HelloForm(forms.Form):
    name = forms.CharField(max_length=50)
    n = forms.IntegerField()


def index(request):
    return HttpResponse("django index\n", content_type="text/plain")


def form(request):
    f = HelloForm(request.POST or None)
    if request.method == "POST" and f.is_valid():
        return HttpResponse("Hello %s, n=%d\n" % (f.cleaned_data["name"], f.cleaned_data["n"]),
                            content_type="text/plain")
    return HttpResponse(str(f.errors) or "form", status=400 if request.method == "POST" else 200)


def upload(request):
    f = request.FILES["file"]
    data = f.read()
    return JsonResponse({
        "filename": f.name,
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "comment": request.POST.get("comment", ""),
    })


def go(request):
    return redirect("target")


def target(request):
    return JsonResponse({
        "script_name": request.META["SCRIPT_NAME"],
        "path": request.path,
        "reverse": reverse("target"),
    })


def boom(request):
    raise RuntimeError("django view failed on purpose")


def hello(request, name):
    return JsonResponse({"hello": name})


urlpatterns = [
    path("", index),
    path("form", form),
    path("upload", upload),
    path("go", go),
    path("target", target, name="target"),
    path("boom", boom),
    path("hello/<str:name>/", hello),
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": os.path.join(HERE, "static")}),
]


from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
