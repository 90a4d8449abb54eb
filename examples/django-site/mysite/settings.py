"""Settings of the minimal Django site that iiswsgi deploys to IIS.

No database and no admin: one view, static files collected at install time. The two lines
marked "set at install" are rewritten by MSDeploy parameters declared in iiswsgi.toml.
"""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Set at install (iiswsgi.toml: "Secret Key"). This development value must never reach a server.
SECRET_KEY = "dev-only-insecure-key-change-me"

# Set at install (iiswsgi.toml: "Allowed Hosts").
ALLOWED_HOSTS = "localhost,127.0.0.1,[::1]".split(",")

DEBUG = False

INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

DATABASES = {}
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"
MEDIA_ROOT = BASE_DIR / "media"
