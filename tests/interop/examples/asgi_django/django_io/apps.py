from django.apps import AppConfig


class DjangoIoConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "django_io"
