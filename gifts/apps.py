from django.apps import AppConfig


class GiftsConfig(AppConfig):
    name = "gifts"
    verbose_name = "全球购赠品 Gifts"
