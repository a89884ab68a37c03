"""The chat message the ``mess`` handler stores."""

from django.db import models


class Message(models.Model):
    author = models.CharField(max_length=100)
    message = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
