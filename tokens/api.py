from ninja import Router

router = Router(tags=["api-tokens"])
