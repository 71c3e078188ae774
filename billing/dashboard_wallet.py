def cards(request) -> list[dict]:
    return []


def nav(request) -> list[dict]:
    return []
