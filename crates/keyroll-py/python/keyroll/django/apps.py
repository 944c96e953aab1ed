from django.apps import AppConfig


class KeyrollConfig(AppConfig):
    name = "keyroll.django"
    label = "keyroll"
    verbose_name = "keyroll"

    def ready(self) -> None:
        from . import checks, live

        checks.register()
        live.start()
