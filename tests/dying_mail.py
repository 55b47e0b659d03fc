"""A worker that dies mid-delivery, for tests/reminders/test_workers.py: the file-based mail
backend, except that the process kills itself (SIGKILL: nothing after it runs, as when the
kernel kills a worker out of memory) just after writing its DIE_AFTER_MESSAGES-th message.
The mail server has accepted that digest and its rows are not yet marked sent: the
documented duplicate."""

import os
import signal
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.filebased import EmailBackend as FileBackend


class EmailBackend(FileBackend):
    written = 0  # in this process

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)  # written and flushed
        EmailBackend.written += sent
        if EmailBackend.written >= int(os.environ["DIE_AFTER_MESSAGES"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return sent
