"""gunicorn's configuration (`gunicorn -c python:tracker.gunicorn`, as bin/tracker starts it):
the address and process count from the environment, and the tracker's own log format for
gunicorn's lines, so that the access log is JSON with the request id like everything else."""

import os

from django.conf import settings

from tracker.env import Env, web_address

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
env = Env(os.environ)

wsgi_app = "tracker.wsgi:application"
bind = [web_address(env)]
# Each process serves one request at a time, so a slow export never holds up another page in
# the same process; two or three per core.
workers = env.int("WEB_WORKERS", 2, minimum=1, maximum=256)
# A request that takes longer is ended and its process replaced (exports stream well within).
timeout = env.int("WEB_TIMEOUT", 120, minimum=10, maximum=3600)
graceful_timeout = 30
# The addresses of the reverse proxies whose X-Forwarded-Proto gunicorn believes.
forwarded_allow_ips = env.str("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
env.check()
# The application is loaded once, in the master: a broken configuration stops the server at
# once with its one-line message, instead of every worker failing over and over.
preload_app = True
logconfig_dict = settings.LOGGING
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'
