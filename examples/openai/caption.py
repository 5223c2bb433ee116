"""Caption an image through blip-captiond's OpenAI-compatible endpoint (blip-captiond --http-listen 127.0.0.1:8080).

    pip install openai && python3 caption.py photo.jpg ["a picture of"]
"""
import base64, sys
from openai import OpenAI

client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="unused")
kind = "png" if sys.argv[1].endswith(".png") else "jpeg"
url = f"data:image/{kind};base64," + base64.b64encode(open(sys.argv[1], "rb").read()).decode()
content = [{"type": "image_url", "image_url": {"url": url}}] + ([{"type": "text", "text": sys.argv[2]}] if len(sys.argv) > 2 else [])
reply = client.chat.completions.create(model="blip", messages=[{"role": "user", "content": content}])
print(reply.choices[0].message.content)
